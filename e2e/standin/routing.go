package standin

import (
	"net"
	"regexp"
	"strings"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// matchRoute picks the virtual host for the request's :authority and its
// first route matching the request's headers (:path and the others), as
// Envoy does: domains exact, then "*.suffix"/"prefix.*" wildcards, then
// "*"; routes in order. draw returns a uniform number in [0, n) for
// runtime_fraction matches. It returns nils when nothing matches (Envoy's
// 404).
func matchRoute(rc *routepb.RouteConfiguration, h headerMap, draw func(n uint64) uint64) (*routepb.VirtualHost, *routepb.Route) {
	host, _ := h.get(":authority")
	vh := matchVirtualHost(rc.GetVirtualHosts(), host)
	if vh == nil {
		return nil, nil
	}
	for _, r := range vh.GetRoutes() {
		if routeMatches(r.GetMatch(), h, draw) {
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

// routeMatches follows RouteEntryImplBase::matchRoute and the path
// matchers' matches (source/common/router/config_impl.cc): the path (the
// query cut off) by prefix, exact path or RE2 safe_regex (a full match,
// Regex::CompiledGoogleReMatcher::match), case sensitive; then every header
// matcher (Http::HeaderUtility::matchHeaders); then runtime_fraction with
// its default value. Any other path specifier never matches (see
// SIMPLIFICATIONS.md).
func routeMatches(m *routepb.RouteMatch, h headerMap, draw func(uint64) uint64) bool {
	path, _ := h.get(":path")
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
	case *routepb.RouteMatch_SafeRegex:
		if !fullMatch(ps.SafeRegex.GetRegex(), path) {
			return false
		}
	default:
		return false
	}
	for _, hm := range m.GetHeaders() {
		if !headerMatches(hm, h) {
			return false
		}
	}
	if rf := m.GetRuntimeFraction(); rf != nil {
		num, den := fraction(rf.GetDefaultValue())
		return draw(den) < num
	}
	return true
}

// headerMatches is one HeaderMatcher against the request headers, as
// Envoy's HeaderDataBaseImpl::matchesHeaders and its subclasses
// (source/common/http/header_utility.h) do: the values of a header sent
// more than once are joined with ","; a missing header fails every value
// matcher, inverted or not (treat_missing_header_as_empty unset);
// present_match compares presence with its value; invert_match turns the
// result around. string_match takes exact, prefix, suffix, contains and
// safe_regex (full match), with ignore_case.
func headerMatches(hm *routepb.HeaderMatcher, h headerMap) bool {
	name := strings.ToLower(hm.GetName())
	var vals []string
	for _, kv := range h {
		if kv[0] == name {
			vals = append(vals, kv[1])
		}
	}
	present := vals != nil
	if pm, ok := hm.GetHeaderMatchSpecifier().(*routepb.HeaderMatcher_PresentMatch); ok {
		return (present == pm.PresentMatch) != hm.GetInvertMatch()
	}
	if !present {
		return false
	}
	return stringMatches(hm.GetStringMatch(), strings.Join(vals, ",")) != hm.GetInvertMatch()
}

// stringMatches is Matchers::StringMatcherImpl::match
// (source/common/common/matchers.h). A matcher the stand-in does not know
// (the deprecated header fields, range_match, custom) never matches.
func stringMatches(sm *matcherpb.StringMatcher, v string) bool {
	if sm == nil {
		return false
	}
	fold := func(s string) string {
		if sm.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherpb.StringMatcher_Exact:
		return fold(v) == fold(p.Exact)
	case *matcherpb.StringMatcher_Prefix:
		return strings.HasPrefix(fold(v), fold(p.Prefix))
	case *matcherpb.StringMatcher_Suffix:
		return strings.HasSuffix(fold(v), fold(p.Suffix))
	case *matcherpb.StringMatcher_Contains:
		return strings.Contains(fold(v), fold(p.Contains))
	case *matcherpb.StringMatcher_SafeRegex:
		return fullMatch(p.SafeRegex.GetRegex(), v)
	}
	return false
}

// fullMatch is RE2's FullMatch; an expression Go cannot compile never
// matches (Envoy would have refused the route configuration).
func fullMatch(expr, s string) bool {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	return err == nil && re.MatchString(s)
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
