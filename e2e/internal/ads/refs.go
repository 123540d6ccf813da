package ads

import (
	"fmt"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// HCMs returns the HTTP connection managers of a listener's filter chains,
// in order. A listener without one yields none.
func HCMs(l *listener.Listener) ([]*hcm.HttpConnectionManager, error) {
	var out []*hcm.HttpConnectionManager
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil {
				continue
			}
			m := &hcm.HttpConnectionManager{}
			if !tc.MessageIs(m) {
				continue
			}
			if err := tc.UnmarshalTo(m); err != nil {
				return nil, fmt.Errorf("listener %s: filter %s: %w", l.GetName(), f.GetName(), err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// Refs returns the RDS route configuration names and the ECDS resource names
// (config_discovery filters) that the HTTP connection managers reference.
func Refs(m *hcm.HttpConnectionManager) (routes, extensions []string) {
	if r := m.GetRds(); r != nil {
		routes = append(routes, r.GetRouteConfigName())
	}
	for _, f := range m.GetHttpFilters() {
		if f.GetConfigDiscovery() != nil {
			extensions = append(extensions, f.GetName())
		}
	}
	return routes, extensions
}
