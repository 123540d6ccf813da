package xdscheck

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	headermutation "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
)

// Small resources in wasmfleet's managed-mode shapes (docs/xds-resources.md),
// for recordings built by hand.

const lis = "ingress"

var rds = snapshot.RouteConfigName(lis)

func slot(p int) string   { return snapshot.SlotName(p, false) }
func canary(p int) string { return snapshot.SlotName(p, true) }

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

// listener has an HCM with n slots (stable and canary each), disabled and
// from ECDS, then the router; routes come from RDS rds.
func listener(n int) *listenerpb.Listener {
	var filters []*hcmpb.HttpFilter
	for p := range n {
		for _, name := range []string{slot(p), canary(p)} {
			filters = append(filters, &hcmpb.HttpFilter{
				Name:     name,
				Disabled: true,
				ConfigType: &hcmpb.HttpFilter_ConfigDiscovery{ConfigDiscovery: &core.ExtensionConfigSource{
					ConfigSource: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
					TypeUrls:     []string{"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"},
				}},
			})
		}
	}
	filters = append(filters, &hcmpb.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmpb.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerpb.Router{})}})
	return &listenerpb.Listener{
		Name: lis,
		FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{{
			Name: "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(&hcmpb.HttpConnectionManager{
				StatPrefix: lis,
				RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{
					ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
					RouteConfigName: rds,
				}},
				HttpFilters: filters,
			})},
		}}}},
	}
}

// routes is the route configuration with these routes in one virtual host.
func routes(rs ...*routepb.Route) *routepb.RouteConfiguration {
	return &routepb.RouteConfiguration{Name: rds, VirtualHosts: []*routepb.VirtualHost{{Name: lis, Domains: []string{"*"}, Routes: rs}}}
}

// route is a route named name that enables slots.
func route(name string, slots ...string) *routepb.Route {
	r := &routepb.Route{
		Name:   name,
		Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: "upstream"}}},
	}
	if len(slots) > 0 {
		r.TypedPerFilterConfig = map[string]*anypb.Any{}
		for _, s := range slots {
			r.TypedPerFilterConfig[s] = mustAny(&routepb.FilterConfig{Config: &anypb.Any{}})
		}
	}
	return r
}

// split is a canary route for share (basis points) of requests.
func split(name string, share uint32, slots ...string) *routepb.Route {
	r := route(name, slots...)
	r.Match.RuntimeFraction = &core.RuntimeFractionalPercent{
		DefaultValue: &typev3.FractionalPercent{Numerator: share, Denominator: typev3.FractionalPercent_TEN_THOUSAND},
	}
	return r
}

// module is the bytes of a fake module; only its digest matters.
func module(name string) []byte { return []byte("\x00asm\x01\x00\x00\x00" + name) }

func digest(name string) string {
	sum := sha256.Sum256(module(name))
	return hex.EncodeToString(sum[:])
}

// wasm is slot s running plugin with module code (inline).
func wasm(s, plugin, code string) *core.TypedExtensionConfig {
	return &core.TypedExtensionConfig{Name: s, TypedConfig: mustAny(&wasmfilter.Wasm{Config: &wasmpb.PluginConfig{
		Name: plugin,
		Vm: &wasmpb.PluginConfig_VmConfig{VmConfig: &wasmpb.VmConfig{
			VmId: plugin, Runtime: snapshot.WasmRuntime,
			Code: &core.AsyncDataSource{Specifier: &core.AsyncDataSource_Local{Local: &core.DataSource{
				Specifier: &core.DataSource_InlineBytes{InlineBytes: module(code)},
			}}},
		}},
	}})}
}

// noop is the placeholder of an unused slot.
func noop(s string) *core.TypedExtensionConfig {
	return &core.TypedExtensionConfig{Name: s, TypedConfig: mustAny(&headermutation.HeaderMutation{})}
}

// resp is an ACKed response; its type is the first resource's.
func resp(t testing.TB, version string, msgs ...proto.Message) Event {
	t.Helper()
	ev := Event{Version: version, Nonce: version}
	for _, m := range msgs {
		a := mustAny(m)
		if ev.TypeURL == "" {
			ev.TypeURL = a.GetTypeUrl()
		}
		ev.Resources = append(ev.Resources, a)
	}
	return ev
}

// nack marks ev NACKed at resource rejected.
func nack(ev Event, rejected string) Event {
	ev.NACK, ev.Rejected = rejected+": "+ErrLoad.Error(), rejected
	return ev
}

func mark(label string) Event { return Event{Mark: label} }

// ecds is every slot of an n-slot listener: those given, no-ops elsewhere,
// in slot order (as wasmfleet sends them).
func ecds(t testing.TB, version string, n int, set ...*core.TypedExtensionConfig) Event {
	t.Helper()
	byName := map[string]*core.TypedExtensionConfig{}
	for _, c := range set {
		byName[c.GetName()] = c
	}
	var msgs []proto.Message
	for p := range n {
		for _, s := range []string{slot(p), canary(p)} {
			if c, ok := byName[s]; ok {
				msgs = append(msgs, c)
			} else {
				msgs = append(msgs, noop(s))
			}
		}
	}
	return resp(t, version, msgs...)
}
