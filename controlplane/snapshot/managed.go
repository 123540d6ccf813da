package snapshot

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// connectTimeout is the upstream connect timeout of every cluster we serve.
const connectTimeout = 5 * time.Second

// managed builds LDS, RDS, CDS and ECDS as docs/xds-resources.md lays out,
// from the slots and chain the sequencing stage chose. LDS and CDS depend
// only on the configuration and the number of slot pairs, never on what the
// slots hold, so rollouts never drain a listener.
func managed(in Input, l wtypes.Layout) (map[resource.Type][]types.Resource, error) {
	pairs := l.Pairs()
	ecds := make([]types.Resource, 0, len(l.Slots))
	for i, fill := range l.Slots {
		name := SlotName(i/2, i%2 == 1)
		if fill.Filter == "" {
			ecds = append(ecds, emptyConfig(name))
			continue
		}
		f, ok := in.filter(fill.Filter)
		if !ok {
			return nil, fmt.Errorf("snapshot: slot %s: %s: %w", name, fill.Filter, ErrUnknownFilter)
		}
		r, err := wasmConfig(in, name, f, fill.Digest)
		if err != nil {
			return nil, err
		}
		ecds = append(ecds, r)
	}
	for _, ln := range l.Chain {
		if ln.Pair < 0 || ln.Pair >= pairs || l.Slots[2*ln.Pair].Filter != ln.Filter {
			return nil, fmt.Errorf("snapshot: chain: %s at pair %d: %w", ln.Filter, ln.Pair, ErrLayout)
		}
	}

	var listeners, routes []types.Resource
	for _, ls := range in.Managed.Listeners {
		lis, err := httpListener(ls, pairs)
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, lis)
		rc, err := routeConfig(ls, l.Chain)
		if err != nil {
			return nil, err
		}
		routes = append(routes, rc)
	}

	var clusters []types.Resource
	for _, c := range in.Managed.Clusters {
		cl, err := staticCluster(c.Name, c.Endpoints, nil)
		if err != nil {
			return nil, err
		}
		clusters = append(clusters, cl)
	}
	mods, err := modulesCluster(in.ModuleURL, in.Managed.ModulesTLS)
	if err != nil {
		return nil, err
	}
	clusters = append(clusters, mods)

	return map[resource.Type][]types.Resource{
		resource.ListenerType:        listeners,
		resource.RouteType:           routes,
		resource.ClusterType:         clusters,
		resource.ExtensionConfigType: ecds,
	}, nil
}

// slotPairs is managed.filter_slots, or its default.
func slotPairs(m config.Managed) int {
	if m.FilterSlots <= 0 {
		return config.DefaultFilterSlots
	}
	return m.FilterSlots
}

// adsSource points a discovery reference back at the ADS stream.
func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

// httpListener is one listener whose HTTP connection manager has every slot,
// each disabled by default and configured by ECDS, then the router.
func httpListener(l config.Listener, slots int) (*listener.Listener, error) {
	addr, err := socketAddress(l.Address)
	if err != nil {
		return nil, fmt.Errorf("snapshot: listener %s: %w", l.Name, err)
	}
	var filters []*hcm.HttpFilter
	for p := range slots {
		for _, canary := range []bool{false, true} {
			filters = append(filters, &hcm.HttpFilter{
				Name:     SlotName(p, canary),
				Disabled: true,
				ConfigType: &hcm.HttpFilter_ConfigDiscovery{ConfigDiscovery: &core.ExtensionConfigSource{
					ConfigSource: adsSource(),
					TypeUrls:     []string{wasmTypeURL, emptyTypeURL},
				}},
			})
		}
	}
	filters = append(filters, &hcm.HttpFilter{
		Name:       RouterFilter,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
	})
	manager := &hcm.HttpConnectionManager{
		StatPrefix: l.Name,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteConfigName(l.Name),
		}},
		HttpFilters: filters,
	}
	return &listener.Listener{
		Name:    l.Name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: addr}},
		FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(manager)},
			}},
		}},
	}, nil
}

// routeConfig enables the slots of the filters in use on every route.
//
// Request splits: Envoy draws one random value per request and tests every
// route's runtime_fraction against that same value (value mod 10000 <
// share). So for the split shares t1 < t2 < ... the routes are, per
// configured route: fraction t1 enabling the canary slot of every filter
// whose share >= t1, fraction t2 enabling the canary of every filter whose
// share >= t2, ..., then a route without a fraction enabling stable slots
// only. Each filter then gets exactly its share of requests, with one route
// per distinct share rather than a cross product whose independent
// fractions Envoy's shared random value would not honour. Every variant
// carries the configured route's whole match (path, headers) and metadata,
// so a split never widens or narrows what the route serves.
//
// The listener's own routes form the virtual host named like it, for every
// host ("*"); each configured virtual host follows with its routes.
func routeConfig(l config.Listener, links []wtypes.Link) (*route.RouteConfiguration, error) {
	var shares []int
	keyOf := map[int]string{}
	for _, ln := range links {
		if !ln.Split() {
			continue
		}
		s := int(ln.Share)
		if _, ok := keyOf[s]; !ok {
			keyOf[s] = RuntimeKey(ln.Filter)
			shares = append(shares, s)
		}
	}
	slices.Sort(shares)

	routes := func(prefix string, rs []config.Route) ([]*route.Route, error) {
		var out []*route.Route
		for i, r := range rs {
			md, err := routeMetadata(r.Metadata)
			if err != nil {
				return nil, fmt.Errorf("snapshot: route %s.%d: %w", prefix, i, err)
			}
			for _, s := range shares {
				m := routeMatch(r)
				m.RuntimeFraction = &core.RuntimeFractionalPercent{
					DefaultValue: &typev3.FractionalPercent{Numerator: uint32(s), Denominator: typev3.FractionalPercent_TEN_THOUSAND},
					RuntimeKey:   keyOf[s],
				}
				out = append(out, &route.Route{
					Name:                 fmt.Sprintf("%s.%d.canary.%d", prefix, i, s),
					Match:                m,
					Action:               clusterAction(r.Cluster),
					Metadata:             md,
					TypedPerFilterConfig: enabled(links, s),
				})
			}
			out = append(out, &route.Route{
				Name:                 fmt.Sprintf("%s.%d", prefix, i),
				Match:                routeMatch(r),
				Action:               clusterAction(r.Cluster),
				Metadata:             md,
				TypedPerFilterConfig: enabled(links, 0),
			})
		}
		return out, nil
	}

	var vhosts []*route.VirtualHost
	if len(l.Routes) > 0 {
		rs, err := routes(l.Name, l.Routes)
		if err != nil {
			return nil, err
		}
		vhosts = append(vhosts, &route.VirtualHost{Name: l.Name, Domains: []string{"*"}, Routes: rs})
	}
	for _, vh := range l.VirtualHosts {
		rs, err := routes(l.Name+"."+vh.Name, vh.Routes)
		if err != nil {
			return nil, err
		}
		vhosts = append(vhosts, &route.VirtualHost{Name: vh.Name, Domains: slices.Clone(vh.Hosts), Routes: rs})
	}
	return &route.RouteConfiguration{Name: RouteConfigName(l.Name), VirtualHosts: vhosts}, nil
}

// routeMatch is a configured route's path and header match, a new message
// for each variant of the route.
func routeMatch(r config.Route) *route.RouteMatch {
	m := &route.RouteMatch{}
	switch {
	case r.Path != "":
		m.PathSpecifier = &route.RouteMatch_Path{Path: r.Path}
	case r.SafeRegex != "":
		m.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: r.SafeRegex}}
	default:
		m.PathSpecifier = &route.RouteMatch_Prefix{Prefix: r.Prefix}
	}
	for _, h := range r.Headers {
		hm := &route.HeaderMatcher{Name: strings.ToLower(h.Name), InvertMatch: h.Invert}
		var sm *matcher.StringMatcher
		switch {
		case h.Exact != nil:
			sm = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: *h.Exact}}
		case h.Prefix != nil:
			sm = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: *h.Prefix}}
		case h.Suffix != nil:
			sm = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: *h.Suffix}}
		case h.Contains != nil:
			sm = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Contains{Contains: *h.Contains}}
		case h.Regex != nil:
			sm = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: *h.Regex}}}
		case h.Present != nil:
			hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: *h.Present}
		}
		if sm != nil {
			hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: sm}
		}
		m.Headers = append(m.Headers, hm)
	}
	return m
}

// routeMetadata is a route's metadata (filter_metadata only), or nil.
func routeMetadata(ns map[string]map[string]any) (*core.Metadata, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	md := &core.Metadata{FilterMetadata: make(map[string]*structpb.Struct, len(ns))}
	for name, obj := range ns {
		s, err := structpb.NewStruct(obj)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", name, err)
		}
		md.FilterMetadata[name] = s
	}
	return md, nil
}

// enabled turns on, per link of the chain, its pair's canary slot when the filter is
// split with a share of at least threshold (0: never), else the stable slot.
// Envoy treats a FilterConfig without config as an error; one whose config is
// an empty Any enables the filter with its listener-level configuration.
func enabled(links []wtypes.Link, threshold int) map[string]*anypb.Any {
	if len(links) == 0 {
		return nil
	}
	on := mustAny(&route.FilterConfig{Config: &anypb.Any{}})
	out := make(map[string]*anypb.Any, len(links))
	for _, l := range links {
		canary := threshold > 0 && l.Split() && int(l.Share) >= threshold
		out[SlotName(l.Pair, canary)] = on
	}
	return out
}

func clusterAction(name string) *route.Route_Route {
	return &route.Route_Route{Route: &route.RouteAction{
		ClusterSpecifier: &route.RouteAction_Cluster{Cluster: name},
	}}
}

// staticCluster is a round-robin cluster of host:port endpoints: STATIC when
// every host is an IP address, STRICT_DNS otherwise.
func staticCluster(name string, endpoints []string, transport *core.TransportSocket) (*cluster.Cluster, error) {
	kind := cluster.Cluster_STATIC
	var lbs []*endpoint.LbEndpoint
	for _, ep := range endpoints {
		addr, err := socketAddress(ep)
		if err != nil {
			return nil, fmt.Errorf("snapshot: cluster %s: %w", name, err)
		}
		if net.ParseIP(addr.Address) == nil {
			kind = cluster.Cluster_STRICT_DNS
		}
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: addr}},
		}}})
	}
	return &cluster.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(connectTimeout),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: kind},
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints:   []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}},
		},
		TransportSocket: transport,
	}, nil
}

// modulesCluster reaches the module server named by the module base URL,
// over TLS (with SNI) for https. With files (managed.modules_tls) Envoy
// also presents its client certificate and checks the server's against the
// CA and the URL's host.
func modulesCluster(base string, files *config.EnvoyTLS) (*cluster.Cluster, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("snapshot: %q: %w", base, ErrModuleURL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var transport *core.TransportSocket
	if u.Scheme == "https" {
		ctx := &tls.UpstreamTlsContext{Sni: u.Hostname()}
		if files != nil {
			ctx.CommonTlsContext = clientTLS(files, u.Hostname())
		}
		transport = &core.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
		}
	}
	return staticCluster(ModulesCluster, []string{net.JoinHostPort(u.Hostname(), port)}, transport)
}

// clientTLS presents the certificate in files and accepts a server whose
// certificate chains to files.CAFile and names host (a DNS or IP SAN).
func clientTLS(files *config.EnvoyTLS, host string) *tls.CommonTlsContext {
	file := func(p string) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: p}}
	}
	san := tls.SubjectAltNameMatcher_DNS
	if net.ParseIP(host) != nil {
		san = tls.SubjectAltNameMatcher_IP_ADDRESS
	}
	return &tls.CommonTlsContext{
		TlsCertificates: []*tls.TlsCertificate{{CertificateChain: file(files.CertFile), PrivateKey: file(files.KeyFile)}},
		ValidationContextType: &tls.CommonTlsContext_ValidationContext{ValidationContext: &tls.CertificateValidationContext{
			TrustedCa: file(files.CAFile),
			MatchTypedSubjectAltNames: []*tls.SubjectAltNameMatcher{{
				SanType: san,
				Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: host}},
			}},
		}},
	}
}

func socketAddress(hostport string) (*core.SocketAddress, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: port: %w", hostport, err)
	}
	return &core.SocketAddress{Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)}}, nil
}
