// Command router is a test guest for route-aware filters. On the request
// headers it reads the route's name (xds.route_name) and its metadata in
// namespace acme.auth (xds.route_metadata.filter_metadata.acme.auth, the
// whole map and its key "scope"). With the plugin configuration "set" it
// sets the request header x-to: canary; with "set+clear" it also calls
// the clear_route_cache foreign function, so the proxy picks the route again. On the
// response headers it reports, as response headers, the route name read at
// the request (x-route-at-request) and now (x-route-at-response), the scope
// (x-route-scope) and the namespace's entries as k=v;... (x-route-ns).
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	mode string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, _ := proxywasm.GetPluginConfiguration()
	p.mode = string(cfg)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{mode: p.mode} }

type stream struct {
	types.DefaultHttpContext
	mode             string
	route, scope, ns string
}

var nsPath = []string{"xds", "route_metadata", "filter_metadata", "acme.auth"}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.route = property("xds", "route_name")
	s.scope = property(append(nsPath, "scope")...)
	if m, err := proxywasm.GetPropertyMap(nsPath); err == nil {
		var kv []string
		for _, e := range m {
			kv = append(kv, e[0]+"="+e[1])
		}
		s.ns = strings.Join(kv, ";")
	}
	if strings.HasPrefix(s.mode, "set") {
		_ = proxywasm.ReplaceHttpRequestHeader("x-to", "canary")
	}
	if s.mode == "set+clear" {
		// Envoy offers proxy_clear_route_cache to ABI 0.1.0 modules only;
		// SDK users on 0.2.x call its foreign function instead.
		if _, err := proxywasm.CallForeignFunction("clear_route_cache", nil); err != nil {
			proxywasm.LogError("router: clear_route_cache: " + err.Error())
		}
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	for _, h := range [][2]string{
		{"x-route-at-request", s.route}, {"x-route-at-response", property("xds", "route_name")},
		{"x-route-scope", s.scope}, {"x-route-ns", s.ns},
	} {
		_ = proxywasm.AddHttpResponseHeader(h[0], h[1])
	}
	return types.ActionContinue
}

func property(path ...string) string {
	b, err := proxywasm.GetProperty(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}
