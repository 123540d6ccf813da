package loadgen

import (
	"fmt"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// codec is gRPC's proto codec, except that discovery responses are decoded
// with each resource's Any value pointing into the received message instead
// of a copy of it. A simulated node checks a module and drops it, so the
// copy protobuf makes of every bytes field was, after the kernel's, the
// load generator's largest cost: thousands of fresh 2.4 MB buffers per
// change, on the same cores as the control plane it measures. The message
// is gathered into one buffer of its own (never a pooled one), so the
// values stay valid for as long as the response is referenced.
type codec struct{ proto encoding.CodecV2 }

var _ encoding.CodecV2 = codec{}

func newCodec() codec { return codec{proto: encoding.GetCodecV2(encproto.Name)} }

// Name is the proto codec's: the server sees no difference.
func (c codec) Name() string { return c.proto.Name() }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		return decodeResponse(data.Materialize(), m)
	case *discovery.DeltaDiscoveryResponse:
		return decodeDeltaResponse(data.Materialize(), m)
	}
	return c.proto.Unmarshal(data, v)
}

// Field numbers of the repeated resources and of the Any inside a delta
// Resource, read from the generated descriptors.
var (
	responseResources      = number(&discovery.DiscoveryResponse{}, "resources")
	deltaResponseResources = number(&discovery.DeltaDiscoveryResponse{}, "resources")
	resourceAny            = number(&discovery.Resource{}, "resource")
	anyFields              = map[protowire.Number]bool{anyTypeURL: true, anyValue: true}
)

// decodeResponse decodes b into m, its resources' values aliasing b.
func decodeResponse(b []byte, m *discovery.DiscoveryResponse) error {
	rest, items, err := split(b, responseResources)
	if err != nil {
		return fmt.Errorf("discovery response: %w", err)
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	for _, item := range items {
		a, err := aliasAny(item)
		if err != nil {
			return fmt.Errorf("discovery response: resource: %w", err)
		}
		m.Resources = append(m.Resources, a)
	}
	return nil
}

// decodeDeltaResponse decodes b into m, the Any of each of its resources
// aliasing b.
func decodeDeltaResponse(b []byte, m *discovery.DeltaDiscoveryResponse) error {
	rest, items, err := split(b, deltaResponseResources)
	if err != nil {
		return fmt.Errorf("delta discovery response: %w", err)
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	for _, item := range items {
		rest, anys, err := split(item, resourceAny)
		if err != nil {
			return fmt.Errorf("delta discovery response: resource: %w", err)
		}
		r := &discovery.Resource{}
		if err := proto.Unmarshal(rest, r); err != nil {
			return err
		}
		if len(anys) > 0 {
			// Proto merges repeated occurrences of a singular message;
			// servers send one, and the last one wins here.
			if r.Resource, err = aliasAny(anys[len(anys)-1]); err != nil {
				return fmt.Errorf("delta discovery response: resource %q: %w", r.GetName(), err)
			}
		}
		m.Resources = append(m.Resources, r)
	}
	return nil
}

// split separates the occurrences of length-delimited field num in the
// encoded message b (returned as subslices of b) from its other fields
// (returned re-encoded in a new, small buffer).
func split(b []byte, num protowire.Number) (rest []byte, items [][]byte, err error) {
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, nil, protowire.ParseError(tagLen)
		}
		l := protowire.ConsumeFieldValue(n, typ, b[tagLen:])
		if l < 0 {
			return nil, nil, protowire.ParseError(l)
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[tagLen:])
			items = append(items, v)
		} else {
			rest = append(rest, b[:tagLen+l]...)
		}
		b = b[tagLen+l:]
	}
	return rest, items, nil
}

// aliasAny decodes an encoded Any whose value aliases b. An Any with a
// field it does not define is an error, not a field silently dropped.
func aliasAny(b []byte) (*anypb.Any, error) {
	a := &anypb.Any{}
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, protowire.ParseError(tagLen)
		}
		if !anyFields[n] || typ != protowire.BytesType {
			return nil, fmt.Errorf("any: unexpected field %d (wire type %d)", n, typ)
		}
		v, l := protowire.ConsumeBytes(b[tagLen:])
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		if n == anyTypeURL {
			a.TypeUrl = string(v)
		} else {
			a.Value = v
		}
		b = b[tagLen+l:]
	}
	return a, nil
}
