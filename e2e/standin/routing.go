package standin

import (
	"net"
	"strings"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// matchRoute picks the virtual host for host and its first route matching
// path, as Envoy does: domains exact, then "*.suffix"/"prefix.*" wildcards,
// then "*"; routes in order. draw returns a uniform number in [0, n) for
// runtime_fraction matches. It returns nils when nothing matches (Envoy's 404).
func matchRoute(rc *routepb.RouteConfiguration, host, path string, draw func(n uint64) uint64) (*routepb.VirtualHost, *routepb.Route) {
	vh := matchVirtualHost(rc.GetVirtualHosts(), host)
	if vh == nil {
		return nil, nil
	}
	for _, r := range vh.GetRoutes() {
		if routeMatches(r.GetMatch(), path, draw) {
			return vh, r
		}
	}
	return vh, nil
}

func matchVirtualHost(vhs []*routepb.VirtualHost, host string) *routepb.VirtualHost {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var wildcard, catchAll *routepb.VirtualHost
	for _, vh := range vhs {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if catchAll == nil {
					catchAll = vh
				}
			case d == host:
				return vh
			case wildcard == nil && strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]),
				wildcard == nil && strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]):
				wildcard = vh
			}
		}
	}
	if wildcard != nil {
		return wildcard
	}
	return catchAll
}

// routeMatches supports prefix and exact path matching (case sensitive, the
// default) and runtime_fraction with its default value; any other path
// specifier never matches (see SIMPLIFICATIONS.md).
func routeMatches(m *routepb.RouteMatch, path string, draw func(uint64) uint64) bool {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch ps := m.GetPathSpecifier().(type) {
	case *routepb.RouteMatch_Prefix:
		if !strings.HasPrefix(path, ps.Prefix) {
			return false
		}
	case *routepb.RouteMatch_Path:
		if path != ps.Path {
			return false
		}
	default:
		return false
	}
	if rf := m.GetRuntimeFraction(); rf != nil {
		num, den := fraction(rf.GetDefaultValue())
		return draw(den) < num
	}
	return true
}

func fraction(p *typepb.FractionalPercent) (num, den uint64) {
	switch p.GetDenominator() {
	case typepb.FractionalPercent_TEN_THOUSAND:
		den = 10_000
	case typepb.FractionalPercent_MILLION:
		den = 1_000_000
	default:
		den = 100
	}
	return uint64(p.GetNumerator()), den
}

// filterEnabled says whether the HCM filter name runs on route r of vh:
// the most specific envoy.config.route.v3.FilterConfig (route, then virtual
// host, then route configuration) decides; without one the filter's own
// disabled flag does.
func filterEnabled(name string, disabled bool, rc *routepb.RouteConfiguration, vh *routepb.VirtualHost, r *routepb.Route) bool {
	for _, m := range []map[string]*anypb.Any{r.GetTypedPerFilterConfig(), vh.GetTypedPerFilterConfig(), rc.GetTypedPerFilterConfig()} {
		a, ok := m[name]
		if !ok {
			continue
		}
		fc := &routepb.FilterConfig{}
		if a.MessageIs(fc) && a.UnmarshalTo(fc) == nil {
			return !fc.GetDisabled()
		}
		return !disabled
	}
	return !disabled
}
