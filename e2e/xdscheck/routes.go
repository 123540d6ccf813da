package xdscheck

import (
	"fmt"
	"maps"
	"slices"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// servedRoute is one route of a serving listener with the slots it runs.
type servedRoute struct {
	listener, routeConfig, route string
	// running lists the config_discovery filters the route runs, in HCM
	// order.
	running []string
	// missing lists slots the route enables that the HCM lacks.
	missing []string
}

// served lists every route of every serving listener, in a fixed order.
func (m *model) served() []servedRoute {
	var out []servedRoute
	for _, lname := range slices.Sorted(maps.Keys(m.listeners)) {
		ls := m.listeners[lname]
		for _, h := range ls.servingHCMs {
			rc := h.GetRouteConfig()
			if r := h.GetRds(); r != nil {
				rc = m.routes[r.GetRouteConfigName()]
			}
			if rc == nil {
				continue // a rejected first RDS response: no routes
			}
			for _, vh := range rc.GetVirtualHosts() {
				for i, r := range vh.GetRoutes() {
					name := r.GetName()
					if name == "" {
						name = fmt.Sprintf("%s[%d]", vh.GetName(), i)
					}
					running, missing := runs(h, rc, vh, r)
					out = append(out, servedRoute{listener: lname, routeConfig: rc.GetName(), route: name, running: running, missing: missing})
				}
			}
		}
	}
	return out
}

// runs lists the config_discovery filters of h that route r runs, in HCM
// order, and the names r enables that h has no filter for. A filter runs
// when it is enabled in the HCM and no per-filter FilterConfig disables it,
// or disabled in the HCM and a FilterConfig (route over virtual host over
// route configuration) enables it.
func runs(h *hcmpb.HttpConnectionManager, rc *routepb.RouteConfiguration, vh *routepb.VirtualHost, r *routepb.Route) (running, missing []string) {
	on := map[string]bool{}
	for _, per := range []map[string]*anypb.Any{rc.GetTypedPerFilterConfig(), vh.GetTypedPerFilterConfig(), r.GetTypedPerFilterConfig()} {
		for name, a := range per {
			fc := &routepb.FilterConfig{}
			if !a.MessageIs(fc) || a.UnmarshalTo(fc) != nil {
				continue // a filter's own per-route config: enables nothing
			}
			on[name] = !fc.GetDisabled()
		}
	}
	have := map[string]bool{}
	for _, f := range h.GetHttpFilters() {
		have[f.GetName()] = true
		if f.GetConfigDiscovery() == nil {
			continue
		}
		enabled, set := on[f.GetName()]
		if (f.GetDisabled() && enabled) || (!f.GetDisabled() && (!set || enabled)) {
			running = append(running, f.GetName())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(on)) {
		if on[name] && !have[name] {
			missing = append(missing, name)
		}
	}
	return running, missing
}
