package snapshot

import (
	"fmt"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutation "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasm "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// fetchTimeout bounds one fetch of remote code. Modules built with the
// standard Go toolchain are about 2 MB.
const fetchTimeout = 30 * time.Second

// Type URLs a slot accepts from ECDS: a Wasm filter, or the no-op that fills
// an unused slot.
var (
	wasmTypeURL  = resource.APITypePrefix + "envoy.extensions.filters.http.wasm.v3.Wasm"
	emptyTypeURL = resource.APITypePrefix + "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
)

// ecdsOnly serves one TypedExtensionConfig per filter, named ECDSName, with
// the version in the stable slot of its pair. There are no routes of ours to
// split requests with, so a split filter runs its stable version (the
// planner does not split in this mode).
func ecdsOnly(in Input, l wtypes.Layout) (map[resource.Type][]types.Resource, error) {
	var out []types.Resource
	for _, ln := range l.Chain {
		f, ok := in.filter(ln.Filter)
		if !ok {
			return nil, fmt.Errorf("snapshot: %s: %w", ln.Filter, ErrUnknownFilter)
		}
		r, err := wasmConfig(in, ECDSName(ln.Filter), f, l.Slots[2*ln.Pair].Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return map[resource.Type][]types.Resource{resource.ExtensionConfigType: out}, nil
}

// filter returns the settings of the named filter.
func (in Input) filter(name string) (config.Filter, bool) {
	for _, f := range in.Filters {
		if f.Name == name {
			return f, true
		}
	}
	return config.Filter{}, false
}

// wasmConfig is the ECDS resource that runs module d of filter f.
func wasmConfig(in Input, name string, f config.Filter, d wtypes.Digest) (*core.TypedExtensionConfig, error) {
	code, err := codeSource(in, f, d)
	if err != nil {
		return nil, err
	}
	plugin := &wasm.PluginConfig{
		Name:          f.Name,
		RootId:        f.RootID,
		FailurePolicy: failurePolicy(f.FailurePolicy),
		Vm: &wasm.PluginConfig_VmConfig{VmConfig: &wasm.VmConfig{
			VmId:    f.Name,
			Runtime: WasmRuntime,
			Code:    code,
		}},
	}
	if len(f.VM.Env) > 0 {
		plugin.GetVmConfig().EnvironmentVariables = &wasm.EnvironmentVariables{KeyValues: f.VM.Env}
	}
	if f.AllowOnHeadersStopIteration {
		plugin.AllowOnHeadersStopIteration = wrapperspb.Bool(true) // unset is Envoy's false
	}
	// Envoy hands the guest a wrapper's value as it is (anyToBytes); a
	// StringValue must be UTF-8, so bytes go as a BytesValue.
	switch b, binary := f.PluginConfiguration(); {
	case binary:
		plugin.Configuration = mustAny(wrapperspb.Bytes(b))
	case len(b) > 0:
		plugin.Configuration = mustAny(wrapperspb.String(string(b)))
	}
	if b := f.VMConfiguration(); len(b) > 0 {
		plugin.GetVmConfig().Configuration = mustAny(wrapperspb.String(string(b)))
	}
	return &core.TypedExtensionConfig{
		Name:        name,
		TypedConfig: mustAny(&wasmfilter.Wasm{Config: plugin}),
	}, nil
}

// emptyConfig fills a slot nothing runs in: every slot needs some config
// before Envoy warms the listener, and a disabled no-op costs nothing.
func emptyConfig(name string) *core.TypedExtensionConfig {
	return &core.TypedExtensionConfig{Name: name, TypedConfig: mustAny(&headermutation.HeaderMutation{})}
}

func codeSource(in Input, f config.Filter, d wtypes.Digest) (*core.AsyncDataSource, error) {
	if f.Code == config.CodeInline {
		if in.Inline == nil {
			return nil, fmt.Errorf("snapshot: %s: %s: %w: no source of inline bytes", f.Name, d.Short(), ErrInline)
		}
		b, err := in.Inline(d)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %s: %s: %w: %w", f.Name, d.Short(), ErrInline, err)
		}
		return &core.AsyncDataSource{Specifier: &core.AsyncDataSource_Local{Local: &core.DataSource{
			Specifier: &core.DataSource_InlineBytes{InlineBytes: b},
		}}}, nil
	}
	return &core.AsyncDataSource{Specifier: &core.AsyncDataSource_Remote{Remote: &core.RemoteDataSource{
		HttpUri: &core.HttpUri{
			Uri:              strings.TrimSuffix(in.ModuleURL, "/") + ModulePathPrefix + string(d),
			HttpUpstreamType: &core.HttpUri_Cluster{Cluster: ModulesCluster},
			Timeout:          durationpb.New(fetchTimeout),
		},
		Sha256: string(d),
	}}}, nil
}

func failurePolicy(p config.FailurePolicy) wasm.FailurePolicy {
	switch p {
	case config.FailOpen:
		return wasm.FailurePolicy_FAIL_OPEN
	case config.FailReload:
		return wasm.FailurePolicy_FAIL_RELOAD
	default:
		return wasm.FailurePolicy_FAIL_CLOSED
	}
}

// mustAny packs a message we built ourselves; packing fails only for a
// message without a registered type, which would be a programming error.
// The bytes are marshaled deterministically: a resource's version is a hash
// of its bytes, and anypb.New would write a map (vm.env's
// environment_variables) in random order, changing the version, and so
// re-sending every node the same config, on every build.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("snapshot: pack %T: %v", m, err))
	}
	return a
}
