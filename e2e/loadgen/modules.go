package loadgen

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// verifiedKeep is how many distinct modules moduleCheck remembers: a few
// filters, each with a stable and a candidate version, and then some.
const verifiedKeep = 16

// moduleCheck finds the sha256 of every module an ECDS response runs, as
// Envoy must read every inline byte before it loads a module. Thousands of
// simulated nodes receive the same few modules, and hashing each copy
// (~1 ms per MB) would make the load generator, not the control plane, what
// a benchmark measures. So a module equal byte for byte to one hashed
// before gets that one's digest (equal bytes, equal sha256), which costs a
// memory comparison instead; the bytes are then dropped with the response.
type moduleCheck struct {
	mu       sync.Mutex
	verified []verifiedModule // most recent last
}

type verifiedModule struct {
	code   []byte
	digest types.Digest
}

// digests returns the modules resp's Wasm filters run, sorted: the sha256
// of inline code, or remote code's declared sha256. It reads the fields it
// needs where they lie in the encoded resource instead of decoding it
// (which copies each module twice more). A resource that is not a
// well-formed TypedExtensionConfig is an error, for the node to NACK.
func (m *moduleCheck) digests(resp *discovery.DiscoveryResponse) ([]types.Digest, error) {
	var out []types.Digest
	for _, a := range resp.GetResources() {
		typed, err := field(a.GetValue(), extTypedConfig)
		if err != nil {
			return nil, fmt.Errorf("ecds: %w", err)
		}
		typeURL, err := field(typed, anyTypeURL)
		if err != nil {
			return nil, fmt.Errorf("ecds: %w", err)
		}
		if string(typeURL) != wasmTypeURL {
			continue // an unused slot
		}
		code, err := path(typed, anyValue, wasmConfig, pluginVMConfig, vmCode)
		if err != nil {
			return nil, fmt.Errorf("ecds: wasm: %w", err)
		}
		if local, err := field(code, codeLocal); err != nil {
			return nil, fmt.Errorf("ecds: wasm: %w", err)
		} else if local != nil {
			inline, err := field(local, sourceInlineBytes)
			if err != nil {
				return nil, fmt.Errorf("ecds: wasm: %w", err)
			}
			out = append(out, m.digest(inline))
			continue
		}
		sha, err := path(code, codeRemote, remoteSha256)
		if err != nil {
			return nil, fmt.Errorf("ecds: wasm: %w", err)
		}
		if sha != nil {
			out = append(out, types.Digest(sha))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Field numbers on the way from a TypedExtensionConfig to its Wasm code,
// read from the generated descriptors.
var (
	extTypedConfig    = number(&core.TypedExtensionConfig{}, "typed_config")
	anyTypeURL        = number(&anypb.Any{}, "type_url")
	anyValue          = number(&anypb.Any{}, "value")
	wasmConfig        = number(&wasmfilter.Wasm{}, "config")
	pluginVMConfig    = number(&wasmv3.PluginConfig{}, "vm_config")
	vmCode            = number(&wasmv3.VmConfig{}, "code")
	codeLocal         = number(&core.AsyncDataSource{}, "local")
	codeRemote        = number(&core.AsyncDataSource{}, "remote")
	sourceInlineBytes = number(&core.DataSource{}, "inline_bytes")
	remoteSha256      = number(&core.RemoteDataSource{}, "sha256")
	wasmTypeURL       = "type.googleapis.com/" + string((&wasmfilter.Wasm{}).ProtoReflect().Descriptor().FullName())
)

func number(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

// field returns the bytes of the last occurrence of length-delimited field
// num in the encoded message b (proto's rule for a repeated singular
// field), or nil when it is absent.
func field(b []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b[tagLen:])
			if l < 0 {
				return nil, protowire.ParseError(l)
			}
			out = v
			if out == nil {
				out = []byte{}
			}
			b = b[tagLen+l:]
			continue
		}
		l := protowire.ConsumeFieldValue(n, typ, b[tagLen:])
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		b = b[tagLen+l:]
	}
	return out, nil
}

// path follows nested length-delimited fields; nil when one is absent.
func path(b []byte, nums ...protowire.Number) ([]byte, error) {
	for _, num := range nums {
		var err error
		if b, err = field(b, num); err != nil || b == nil {
			return nil, err
		}
	}
	return b, nil
}

// digest returns the sha256 of code, from memory when the same bytes were
// hashed before.
func (m *moduleCheck) digest(code []byte) types.Digest {
	m.mu.Lock()
	known := slices.Clone(m.verified)
	m.mu.Unlock()
	for _, v := range slices.Backward(known) {
		if bytes.Equal(v.code, code) {
			return v.digest
		}
	}
	d := types.DigestOf(code)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.verified) == verifiedKeep {
		m.verified = slices.Delete(m.verified, 0, 1)
	}
	m.verified = append(m.verified, verifiedModule{code: code, digest: d})
	return d
}
