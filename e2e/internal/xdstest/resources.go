package xdstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutationpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// ModulesCluster is the cluster remote code is fetched through.
const ModulesCluster = "wasmfleet_modules"

// Any packs m, failing the test on error.
func Any(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ads() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

// Listener is a managed-mode listener on 0.0.0.0:port whose HCM takes routes
// "wasmfleet.routes.<name>" from RDS and runs the slots (all disabled: true,
// from ECDS) before the router.
func Listener(t testing.TB, name string, port uint32, slots ...string) *listenerpb.Listener {
	t.Helper()
	m := &hcmpb.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
			RouteConfigName: RoutesName(name),
			ConfigSource:    ads(),
		}},
	}
	for _, s := range slots {
		m.HttpFilters = append(m.HttpFilters, &hcmpb.HttpFilter{
			Name:     s,
			Disabled: true,
			ConfigType: &hcmpb.HttpFilter_ConfigDiscovery{ConfigDiscovery: &core.ExtensionConfigSource{
				ConfigSource: ads(),
				TypeUrls: []string{
					"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
					"type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
				},
			}},
		})
	}
	m.HttpFilters = append(m.HttpFilters, &hcmpb.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: Any(t, &routerpb.Router{})},
	})
	return &listenerpb.Listener{
		Name: name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: Any(t, m)},
		}}}},
	}
}

// RoutesName is the RDS name of a listener's routes.
func RoutesName(listener string) string { return "wasmfleet.routes." + listener }

// Route is one route: a prefix to a cluster, enabling slots. Share, when
// non-nil, is the runtime_fraction in basis points (of 10000).
type Route struct {
	Prefix, Cluster string
	Slots           []string
	Share           *uint32
}

// Routes is the route configuration of listener: one virtual host "*".
func Routes(t testing.TB, listener string, rs ...Route) *routepb.RouteConfiguration {
	t.Helper()
	vh := &routepb.VirtualHost{Name: "all", Domains: []string{"*"}}
	for _, r := range rs {
		rt := &routepb.Route{
			Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: r.Prefix}},
			Action: &routepb.Route_Route{Route: &routepb.RouteAction{
				ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: r.Cluster},
			}},
			TypedPerFilterConfig: map[string]*anypb.Any{},
		}
		if r.Share != nil {
			rt.Match.RuntimeFraction = &core.RuntimeFractionalPercent{
				DefaultValue: &typepb.FractionalPercent{Numerator: *r.Share, Denominator: typepb.FractionalPercent_TEN_THOUSAND},
				RuntimeKey:   "wasmfleet.test.candidate",
			}
		}
		for _, s := range r.Slots {
			rt.TypedPerFilterConfig[s] = Any(t, &routepb.FilterConfig{})
		}
		vh.Routes = append(vh.Routes, rt)
	}
	return &routepb.RouteConfiguration{Name: RoutesName(listener), VirtualHosts: []*routepb.VirtualHost{vh}}
}

// Cluster is a STATIC round-robin cluster to addr (host:port).
func Cluster(t testing.TB, name, addr string) *clusterpb.Cluster {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return &clusterpb.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_STATIC},
		LbPolicy:             clusterpb.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpointpb.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointpb.LocalityLbEndpoints{{LbEndpoints: []*endpointpb.LbEndpoint{{
				HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{
					Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
					}}},
				}},
			}}}},
		},
	}
}

// Noop is the empty header_mutation config of an unused slot.
func Noop(t testing.TB, slot string) *core.TypedExtensionConfig {
	t.Helper()
	return &core.TypedExtensionConfig{Name: slot, TypedConfig: Any(t, &headermutationpb.HeaderMutation{})}
}

// Filter is a Wasm filter for a slot. Set Inline, or ModuleBaseURL for
// remote code at <ModuleBaseURL>/modules/sha256/<Digest>.
type Filter struct {
	Name, Config  string
	Inline        []byte
	ModuleBaseURL string
	Digest        wftypes.Digest
	Policy        wasmpb.FailurePolicy
	NackOnMiss    bool
}

// Wasm is the ECDS resource for f in slot.
func Wasm(t testing.TB, slot string, f Filter) *core.TypedExtensionConfig {
	t.Helper()
	code := &core.AsyncDataSource{}
	if f.Inline != nil {
		code.Specifier = &core.AsyncDataSource_Local{Local: &core.DataSource{
			Specifier: &core.DataSource_InlineBytes{InlineBytes: f.Inline},
		}}
	} else {
		code.Specifier = &core.AsyncDataSource_Remote{Remote: &core.RemoteDataSource{
			HttpUri: &core.HttpUri{
				Uri:              f.ModuleBaseURL + "/modules/sha256/" + string(f.Digest),
				HttpUpstreamType: &core.HttpUri_Cluster{Cluster: ModulesCluster},
				Timeout:          durationpb.New(5 * time.Second),
			},
			Sha256: string(f.Digest),
		}}
	}
	w := &wasmfilterpb.Wasm{Config: &wasmpb.PluginConfig{
		Name:          f.Name,
		Configuration: Any(t, wrapperspb.String(f.Config)),
		FailurePolicy: f.Policy,
		Vm: &wasmpb.PluginConfig_VmConfig{VmConfig: &wasmpb.VmConfig{
			VmId:                f.Name,
			Runtime:             "envoy.wasm.runtime.v8",
			Code:                code,
			NackOnCodeCacheMiss: f.NackOnMiss,
		}},
	}}
	return &core.TypedExtensionConfig{Name: slot, TypedConfig: Any(t, w)}
}

// Share returns a pointer for Route.Share.
func Share(basisPoints uint32) *uint32 { return &basisPoints }
