package standin

import (
	"testing"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

func TestMatchRoute(t *testing.T) {
	vhs := []*routepb.VirtualHost{
		{Name: "exact", Domains: []string{"api.example.com"}, Routes: []*routepb.Route{
			{Name: "exact-path", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Path{Path: "/v1"}}},
			{Name: "api-all", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}}},
		}},
		{Name: "suffix", Domains: []string{"*.example.com"}, Routes: []*routepb.Route{
			{Name: "suffix-all", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}}},
		}},
		{Name: "any", Domains: []string{"*"}, Routes: []*routepb.Route{
			{Name: "regex", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "/items/[0-9]+"}}}},
			{Name: "hdr-exact", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/h"},
				Headers: []*routepb.HeaderMatcher{{Name: "X-V", HeaderMatchSpecifier: stringMatch(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: "1"}})}}}},
			{Name: "hdr-inverted", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/h"},
				Headers: []*routepb.HeaderMatcher{{Name: "x-w", InvertMatch: true, HeaderMatchSpecifier: stringMatch(&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_SafeRegex{SafeRegex: &matcherpb.RegexMatcher{Regex: "a.*"}}})}}}},
			{Name: "hdr-suffix-nocase", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/h"},
				Headers: []*routepb.HeaderMatcher{{Name: "x-w", HeaderMatchSpecifier: stringMatch(&matcherpb.StringMatcher{IgnoreCase: true, MatchPattern: &matcherpb.StringMatcher_Suffix{Suffix: "Z"}})}}}},
			{Name: "not-debug", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/h"},
				Headers: []*routepb.HeaderMatcher{{Name: "x-debug", HeaderMatchSpecifier: &routepb.HeaderMatcher_PresentMatch{PresentMatch: false}}}}},
			{Name: "static", Match: &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/static/"}}},
		}},
	}
	rc := &routepb.RouteConfiguration{VirtualHosts: vhs}
	never := func(uint64) uint64 { t.Fatal("no runtime_fraction here"); return 0 }
	tests := []struct {
		name, host, path string
		headers          headerMap
		vh, route        string
	}{
		{name: "exact host, exact path", host: "api.example.com", path: "/v1", vh: "exact", route: "exact-path"},
		{name: "exact path ignores the query", host: "api.example.com:8080", path: "/v1?x=1", vh: "exact", route: "exact-path"},
		{name: "exact host, prefix", host: "API.example.com", path: "/v2", vh: "exact", route: "api-all"},
		{name: "suffix wildcard", host: "www.example.com", path: "/", vh: "suffix", route: "suffix-all"},
		{name: "catch-all host", host: "other.test", path: "/static/a.css", vh: "any", route: "static"},
		{name: "regex matches the whole path", host: "other.test", path: "/items/42?q=1", vh: "any", route: "regex"},
		{name: "regex must match all of it; no route", host: "other.test", path: "/items/42/x", vh: "any"},
		{name: "header exact, name case-insensitive", host: "other.test", path: "/h", headers: headerMap{{"x-v", "1"}}, vh: "any", route: "hdr-exact"},
		{name: "repeated header is matched joined", host: "other.test", path: "/h", headers: headerMap{{"x-v", "1"}, {"x-v", "2"}, {"x-debug", "1"}}, vh: "any"},
		{name: "inverted regex matches another value", host: "other.test", path: "/h", headers: headerMap{{"x-w", "b"}}, vh: "any", route: "hdr-inverted"},
		{name: "ignore_case suffix", host: "other.test", path: "/h", headers: headerMap{{"x-w", "abcz"}}, vh: "any", route: "hdr-suffix-nocase"},
		{name: "a missing header fails even inverted; present false matches", host: "other.test", path: "/h", vh: "any", route: "not-debug"},
		{name: "present false refuses a present header", host: "other.test", path: "/h", headers: headerMap{{"x-debug", ""}}, vh: "any"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vh, r := matchRoute(rc, request(tc.host, tc.path, tc.headers...), never)
			if vh.GetName() != tc.vh || r.GetName() != tc.route {
				t.Errorf("got %q/%q, want %q/%q", vh.GetName(), r.GetName(), tc.vh, tc.route)
			}
		})
	}
}

// request is the header map of a request to host and path.
func request(host, path string, more ...[2]string) headerMap {
	return append(headerMap{{":method", "GET"}, {":path", path}, {":authority", host}}, more...)
}

func stringMatch(sm *matcherpb.StringMatcher) *routepb.HeaderMatcher_StringMatch {
	return &routepb.HeaderMatcher_StringMatch{StringMatch: sm}
}

func TestRuntimeFraction(t *testing.T) {
	tests := []struct {
		name  string
		share uint32
		draw  uint64
		match bool
	}{
		{name: "draw below the share", share: 2500, draw: 2499, match: true},
		{name: "draw at the share", share: 2500, draw: 2500},
		{name: "zero share", share: 0, draw: 0},
		{name: "full share", share: 10000, draw: 9999, match: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := xdstest.Routes(t, "l", xdstest.Route{Prefix: "/", Cluster: "c", Share: xdstest.Share(tc.share)})
			_, r := matchRoute(rc, request("h", "/"), func(n uint64) uint64 {
				if n != 10000 {
					t.Errorf("drawn from [0,%d), want [0,10000)", n)
				}
				return tc.draw
			})
			if (r != nil) != tc.match {
				t.Errorf("matched %v, want %v", r != nil, tc.match)
			}
		})
	}
}

func TestFilterEnabled(t *testing.T) {
	enable := func(t *testing.T) map[string]*anypb.Any {
		return map[string]*anypb.Any{"f": xdstest.Any(t, &routepb.FilterConfig{})}
	}
	disable := func(t *testing.T) map[string]*anypb.Any {
		return map[string]*anypb.Any{"f": xdstest.Any(t, &routepb.FilterConfig{Disabled: true})}
	}
	other := func(t *testing.T) map[string]*anypb.Any {
		return map[string]*anypb.Any{"f": xdstest.Any(t, &routepb.RouteConfiguration{})}
	}
	none := func(*testing.T) map[string]*anypb.Any { return nil }
	tests := []struct {
		name          string
		disabled      bool
		rc, vh, route func(*testing.T) map[string]*anypb.Any
		want          bool
	}{
		{name: "enabled filter, no per-route config", rc: none, vh: none, route: none, want: true},
		{name: "disabled filter, no per-route config", disabled: true, rc: none, vh: none, route: none},
		{name: "route enables", disabled: true, rc: none, vh: none, route: enable, want: true},
		{name: "virtual host enables", disabled: true, rc: none, vh: enable, route: none, want: true},
		{name: "route config enables", disabled: true, rc: enable, vh: none, route: none, want: true},
		{name: "route beats virtual host", disabled: true, rc: none, vh: enable, route: disable},
		{name: "route disables an enabled filter", rc: none, vh: none, route: disable},
		{name: "other per-route config does not enable", disabled: true, rc: none, vh: none, route: other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &routepb.RouteConfiguration{TypedPerFilterConfig: tc.rc(t)}
			vh := &routepb.VirtualHost{TypedPerFilterConfig: tc.vh(t)}
			r := &routepb.Route{TypedPerFilterConfig: tc.route(t)}
			if got := filterEnabled("f", tc.disabled, rc, vh, r); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
