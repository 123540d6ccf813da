package config

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strings"
)

// Route sends the requests it matches to Cluster. Exactly one of Prefix,
// Path and SafeRegex says which paths (the query excluded) match; every
// header matcher must match too.
type Route struct {
	// Prefix matches paths that start with it.
	Prefix string `json:"prefix,omitempty"`
	// Path matches the path exactly.
	Path string `json:"path,omitempty"`
	// SafeRegex is an RE2 expression the whole path must match.
	SafeRegex string          `json:"safe_regex,omitempty"`
	Headers   []HeaderMatcher `json:"headers,omitempty"`
	Cluster   string          `json:"cluster"`
	// Metadata is the route's filter_metadata: namespace -> object. Filters
	// read it as the xds.route_metadata property.
	Metadata map[string]map[string]any `json:"metadata,omitempty"`
}

// HeaderMatcher is one condition on a request header (Envoy's
// HeaderMatcher): exactly one of Exact, Prefix, Suffix, Contains, Regex
// (RE2, whole value) or Present. A header sent several times is matched as
// its values joined with ",". A missing header matches none of the value
// conditions, inverted or not; Present true matches when it is there, false
// when it is not.
type HeaderMatcher struct {
	Name     string  `json:"name"`
	Exact    *string `json:"exact,omitempty"`
	Prefix   *string `json:"prefix,omitempty"`
	Suffix   *string `json:"suffix,omitempty"`
	Contains *string `json:"contains,omitempty"`
	Regex    *string `json:"regex,omitempty"`
	Present  *bool   `json:"present,omitempty"`
	// Invert turns the result of the condition around.
	Invert bool `json:"invert,omitempty"`
}

// VirtualHost is a group of routes for the hosts (Envoy's domains) it names:
// "example.com" exactly, "*.example.com" or "*-api.example.com" by suffix,
// "example.*" by prefix, or "*" for any. Envoy picks the exact host first,
// then the longest suffix, then the longest prefix, then "*"
// (RouteMatcher::findVirtualHost and findWildcardVirtualHost in
// source/common/router/config_impl.cc). The port in the request's host is
// part of the match there unless the connection manager strips it.
type VirtualHost struct {
	Name   string   `json:"name"`
	Hosts  []string `json:"hosts"`
	Routes []Route  `json:"routes"`
}

var (
	// ErrAmbiguous: a route or header matcher says more than one thing.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrRegex: not an RE2 regular expression.
	ErrRegex = errors.New("not an RE2 regular expression")
)

// validateRoutes adds to ps every problem of a listener's routes and
// virtual hosts; field is the listener's path and clusters the defined
// cluster names.
func (l Listener) validateRoutes(ps *Problems, field string, clusters map[string]bool) {
	bad := ps.add
	if len(l.Routes) == 0 && len(l.VirtualHosts) == 0 {
		bad(field+".routes", ErrRequired, "routes or virtual_hosts")
	}
	routes := func(f string, rs []Route) {
		for j, r := range rs {
			r.validate(fmt.Sprintf("%s.routes[%d]", f, j), clusters, bad)
		}
	}
	routes(field, l.Routes)
	names := map[string]bool{}
	domains := map[string]string{} // lower-case domain -> where it was named
	if len(l.Routes) > 0 {
		names[l.Name] = true
		domains["*"] = field + ".routes"
	}
	for i, vh := range l.VirtualHosts {
		vf := fmt.Sprintf("%s.virtual_hosts[%d]", field, i)
		switch {
		case vh.Name == "":
			bad(vf+".name", ErrRequired, "")
		case names[vh.Name]:
			bad(vf+".name", ErrDuplicate, "%q (the listener's own routes take its name)", vh.Name)
		}
		names[vh.Name] = true
		if len(vh.Hosts) == 0 {
			bad(vf+".hosts", ErrRequired, "")
		}
		for j, h := range vh.Hosts {
			hf := fmt.Sprintf("%s.hosts[%d]", vf, j)
			if !validDomain(h) {
				bad(hf, ErrInvalidValue, "%q: a host, with at most one '*' at its start or end", h)
			}
			key := strings.ToLower(h)
			if prev, ok := domains[key]; ok {
				bad(hf, ErrDuplicate, "%q is served by %s already (Envoy refuses a domain twice)", h, prev)
			}
			domains[key] = vf
		}
		if len(vh.Routes) == 0 {
			bad(vf+".routes", ErrRequired, "")
		}
		routes(vf, vh.Routes)
	}
}

// validDomain follows Envoy's domain rules: non-empty, no whitespace or
// '/', and a wildcard only as the whole domain, its first or its last
// character.
func validDomain(d string) bool {
	if d == "*" {
		return true
	}
	if d == "" || strings.ContainsAny(d, " \t/") {
		return false
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(d, "*"), "*")
	if len(inner) != len(d)-1 && d != inner { // a '*' at both ends
		return false
	}
	return inner != "" && !strings.Contains(inner, "*")
}

func (r Route) validate(field string, clusters map[string]bool, bad func(string, error, string, ...any)) {
	var set []string
	for _, s := range []struct{ name, v string }{{"prefix", r.Prefix}, {"path", r.Path}, {"safe_regex", r.SafeRegex}} {
		if s.v != "" {
			set = append(set, s.name)
		}
	}
	switch {
	case len(set) == 0:
		bad(field, ErrRequired, "one of prefix, path or safe_regex")
	case len(set) > 1:
		bad(field, ErrAmbiguous, "%s: set one path matcher", strings.Join(set, " and "))
	}
	for _, s := range []struct{ name, v string }{{"prefix", r.Prefix}, {"path", r.Path}} {
		if s.v != "" && !strings.HasPrefix(s.v, "/") {
			bad(field+"."+s.name, ErrInvalidValue, "%q must start with /", s.v)
		}
	}
	if r.SafeRegex != "" {
		checkRegex(field+".safe_regex", r.SafeRegex, bad)
	}
	for i, h := range r.Headers {
		h.validate(fmt.Sprintf("%s.headers[%d]", field, i), bad)
	}
	for ns, obj := range r.Metadata {
		if ns == "" || obj == nil {
			bad(field+".metadata", ErrInvalidValue, "%q: a non-empty namespace with an object", ns)
		}
	}
	if !clusters[r.Cluster] {
		bad(field+".cluster", ErrUnknownRef, "%q", r.Cluster)
	}
}

func (h HeaderMatcher) validate(field string, bad func(string, error, string, ...any)) {
	if h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n\x00") {
		bad(field+".name", ErrInvalidValue, "%q: a header name", h.Name)
	}
	var set []string
	for _, s := range []struct {
		name string
		v    *string
	}{{"exact", h.Exact}, {"prefix", h.Prefix}, {"suffix", h.Suffix}, {"contains", h.Contains}, {"regex", h.Regex}} {
		if s.v == nil {
			continue
		}
		set = append(set, s.name)
		if *s.v == "" && s.name != "exact" {
			bad(field+"."+s.name, ErrInvalidValue, "empty (Envoy needs at least one character)")
		}
	}
	if h.Present != nil {
		set = append(set, "present")
	}
	switch {
	case len(set) == 0:
		bad(field, ErrRequired, "one of exact, prefix, suffix, contains, regex or present")
	case len(set) > 1:
		bad(field, ErrAmbiguous, "%s: set one condition", strings.Join(set, " and "))
	}
	if h.Regex != nil && *h.Regex != "" {
		checkRegex(field+".regex", *h.Regex, bad)
	}
}

// checkRegex refuses what RE2 (Envoy's safe_regex engine) would not
// compile; Go's regexp/syntax parses the same language.
func checkRegex(field, re string, bad func(string, error, string, ...any)) {
	if _, err := syntax.Parse(re, syntax.Perl); err != nil {
		bad(field, ErrRegex, "%v", err)
	}
}
