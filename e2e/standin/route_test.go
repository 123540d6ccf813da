package standin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// routedRoutes: host api.example.com goes to canary; on any other host
// x-to: canary goes to canary, /items/<digits> to canary, the rest to
// upstream. Each route enables slot 0 and has acme.auth metadata.
func routedRoutes(t *testing.T) *routepb.RouteConfiguration {
	on := map[string]*anypb.Any{slot0: xdstest.Any(t, &routepb.FilterConfig{Config: &anypb.Any{}})}
	rt := func(name string, m *routepb.RouteMatch, cluster string, md map[string]any) *routepb.Route {
		s, err := structpb.NewStruct(md)
		if err != nil {
			t.Fatal(err)
		}
		return &routepb.Route{
			Name: name, Match: m, TypedPerFilterConfig: on,
			Metadata: &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"acme.auth": s}},
			Action: &routepb.Route_Route{Route: &routepb.RouteAction{
				ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: cluster},
			}},
		}
	}
	prefix := &routepb.RouteMatch_Prefix{Prefix: "/"}
	return &routepb.RouteConfiguration{Name: xdstest.RoutesName(listener), VirtualHosts: []*routepb.VirtualHost{
		{Name: "api", Domains: []string{"api.example.com"}, Routes: []*routepb.Route{
			rt("api.0", &routepb.RouteMatch{PathSpecifier: prefix}, "canary", map[string]any{"scope": "api"}),
		}},
		{Name: "all", Domains: []string{"*"}, Routes: []*routepb.Route{
			rt("all.to-canary", &routepb.RouteMatch{PathSpecifier: prefix, Headers: []*routepb.HeaderMatcher{{
				Name: "x-to", HeaderMatchSpecifier: &routepb.HeaderMatcher_StringMatch{StringMatch: &matcherpb.StringMatcher{
					MatchPattern: &matcherpb.StringMatcher_Exact{Exact: "canary"},
				}},
			}}}, "canary", map[string]any{"scope": "canary", "tier": "gold"}),
			rt("all.items", &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_SafeRegex{
				SafeRegex: &matcherpb.RegexMatcher{Regex: "/items/[0-9]+"},
			}}, "canary", map[string]any{"scope": "items"}),
			rt("all.default", &routepb.RouteMatch{PathSpecifier: prefix}, upstream, map[string]any{"scope": "default"}),
		}},
	}}
}

// TestRouteMatchAndMetadata runs the router guest on routes that match by
// header, host and regex: the request reaches the cluster its route names,
// and the guest reads the route's name and metadata. A guest that sets the
// header and clears the route cache moves the request to the header's
// route; without proxy_clear_route_cache the first route holds.
func TestRouteMatchAndMetadata(t *testing.T) {
	tests := []struct {
		name, mode, path string
		hdr              []string
		body             string // which upstream answered
		atRequest        string
		atResponse       string // default: atRequest
		scope, ns        string
	}{
		{name: "header route", path: "/a", hdr: []string{"x-to", "canary"}, body: "canary\n",
			atRequest: "all.to-canary", scope: "canary", ns: "scope=canary;tier=gold"},
		{name: "host route", path: "/a", hdr: []string{"host", "api.example.com"}, body: "canary\n",
			atRequest: "api.0", scope: "api", ns: "scope=api"},
		{name: "regex route", path: "/items/42?q=1", body: "canary\n", atRequest: "all.items", scope: "items", ns: "scope=items"},
		{name: "regex needs a full match", path: "/items/42/x", body: "upstream\n", atRequest: "all.default", scope: "default", ns: "scope=default"},
		{name: "clear_route_cache re-routes", mode: "set+clear", path: "/a", body: "canary\n",
			atRequest: "all.default", atResponse: "all.to-canary", scope: "default", ns: "scope=default"},
		{name: "without clear_route_cache the route holds", mode: "set", path: "/a", body: "upstream\n",
			atRequest: "all.default", scope: "default", ns: "scope=default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "canary\n")
			}))
			t.Cleanup(canary.Close)
			rs := e.config(t, xdstest.Wasm(t, slot0, xdstest.Filter{Name: "router", Config: tc.mode, Inline: guest(t, "router")}), xdstest.Noop(t, slot1))
			rs[xdstest.ClusterType] = append(rs[xdstest.ClusterType], xdstest.Cluster(t, "canary", strings.TrimPrefix(canary.URL, "http://")))
			rs[xdstest.RouteType] = []types.Resource{routedRoutes(t)}
			e.xds.Set(t, nodeID, rs)
			n := e.startNode(t, nil)
			r := get(t, listenerAddr(t, n), tc.path, tc.hdr...)
			if r.status != http.StatusOK || r.body != tc.body {
				t.Fatalf("got %d %q, want 200 %q", r.status, r.body, tc.body)
			}
			if tc.atResponse == "" {
				tc.atResponse = tc.atRequest
			}
			for h, want := range map[string]string{
				"x-route-at-request": tc.atRequest, "x-route-at-response": tc.atResponse,
				"x-route-scope": tc.scope, "x-route-ns": tc.ns,
			} {
				if got := r.header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
		})
	}
}

// TestUnlinkableModuleRefused: a module that imports proxy_clear_route_cache
// while declaring ABI 0.2.x cannot be linked by Envoy, so the stand-in NACKs
// it too, naming the import (wasmhost alone would provide it).
func TestUnlinkableModuleRefused(t *testing.T) {
	e := newEnv(t)
	e.xds.Set(t, nodeID, e.config(t, xdstest.Wasm(t, slot0, xdstest.Filter{Name: "oldclear", Inline: guest(t, "oldclear")}), xdstest.Noop(t, slot1)))
	n := e.startNode(t, nil)
	var ts dataplane.TypeStatus
	await(t, "the module NACKed", func() bool {
		ts = n.Status().Types[dataplane.ExtensionType]
		return ts.Error != ""
	})
	if !strings.Contains(ts.Error, "proxy_clear_route_cache") || !strings.Contains(ts.Error, "0.1.0") {
		t.Errorf("NACK %q does not name the import and the ABI it needs", ts.Error)
	}
}
