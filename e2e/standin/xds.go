package standin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// RouterName is the HTTP router filter, always last in a chain.
const RouterName = "envoy.filters.http.router"

type clusterState struct {
	proto     *clusterpb.Cluster
	endpoints []string // host:port
	next      atomic.Uint64
}

// pick returns the next endpoint, round robin.
func (c *clusterState) pick() (string, bool) {
	if len(c.endpoints) == 0 {
		return "", false
	}
	i := c.next.Add(1) - 1
	return c.endpoints[i%uint64(len(c.endpoints))], true
}

// listenerState is one LDS listener: the latest config received and the one
// serving (they differ while the latest warms).
type listenerState struct {
	latest *listenerpb.Listener
	hcm    *hcmpb.HttpConnectionManager // of latest
	active *activeListener
}

type activeListener struct {
	proto *listenerpb.Listener
	hcm   *hcmpb.HttpConnectionManager
	bind  string // the address asked for
	addr  string // the address bound
	srv   *http.Server
}

var _ ads.DeltaHandler = (*node)(nil)

// Handle applies one state-of-the-world xDS response; an error NACKs it.
// Called from the ADS client's goroutine only.
func (n *node) Handle(resp *discovery.DiscoveryResponse) error { return n.HandleDelta(resp, nil) }

// HandleDelta applies one xDS response, delta or state of the world (where
// nothing is ever removed), in the ADS client's state-of-the-world view;
// an error NACKs it. Removed listeners and clusters are absent from the
// view, so their types need nothing more. A removed route configuration
// keeps serving: Envoy's RdsRouteConfigSubscription::onConfigUpdate (delta
// form, source/common/router/rds_impl.cc) logs and ignores a removal. A
// removed filter config goes (removeExtensions).
func (n *node) HandleDelta(resp *discovery.DiscoveryResponse, removed []string) error {
	msgs, err := unpack(resp)
	if err == nil {
		switch resp.GetTypeUrl() {
		case dataplane.ClusterType:
			err = n.applyClusters(msgs)
		case dataplane.ListenerType:
			err = n.applyListeners(msgs)
		case dataplane.RouteType:
			err = n.applyRoutes(msgs)
		case dataplane.ExtensionType:
			err = n.applyExtensions(resp.GetVersionInfo(), msgs, removed)
		default:
			err = fmt.Errorf("type %s: %w", resp.GetTypeUrl(), errUnsupported)
		}
	}
	if err != nil && resp.GetTypeUrl() == dataplane.ExtensionType {
		n.rejectWatches()
	}
	// Each response takes effect on its own: a listener that this response
	// completes starts serving now, whatever the other types hold. A
	// rejected ECDS response can complete one too (rejectWatches).
	if rerr := n.reconcile(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	n.mu.Lock()
	ts, ok := n.types[resp.GetTypeUrl()]
	if !ok {
		ts = &dataplane.TypeStatus{}
		n.types[resp.GetTypeUrl()] = ts
	}
	if err != nil {
		ts.Rejected, ts.Error = resp.GetVersionInfo(), err.Error()
		ts.Nacks++
	} else {
		ts.Version, ts.Rejected, ts.Error = resp.GetVersionInfo(), "", ""
		ts.Acks++
	}
	n.mu.Unlock()
	if err != nil {
		n.log.Warn("nack", zap.String("type", resp.GetTypeUrl()), zap.String("version", resp.GetVersionInfo()), zap.Error(err))
	}
	return err
}

// Names is what the listeners (latest and serving) reference, for the ADS
// client's RDS and ECDS subscriptions.
func (n *node) Names(typeURL string) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for _, ls := range n.listeners {
		for _, m := range []*hcmpb.HttpConnectionManager{ls.hcm, ls.activeHCM()} {
			if m == nil {
				continue
			}
			routes, exts := ads.Refs(m)
			if typeURL == dataplane.RouteType {
				out = append(out, routes...)
			} else if typeURL == dataplane.ExtensionType {
				out = append(out, exts...)
			}
		}
	}
	return out
}

func (ls *listenerState) activeHCM() *hcmpb.HttpConnectionManager {
	if ls.active == nil {
		return nil
	}
	return ls.active.hcm
}

// validate runs the Envoy API's generated validation on m. It does not look
// inside Any fields; callers validate what they unpack from those.
func validate(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		return v.ValidateAll()
	}
	return nil
}

// unpack decodes every resource and checks it with the Envoy API's own
// validation, as Envoy rejects a response holding an invalid resource.
func unpack(resp *discovery.DiscoveryResponse) ([]proto.Message, error) {
	out := make([]proto.Message, 0, len(resp.GetResources()))
	for i, a := range resp.GetResources() {
		if a.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("resource %d: type %s in a %s response", i, a.GetTypeUrl(), resp.GetTypeUrl())
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		if err := validate(m); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (n *node) applyClusters(msgs []proto.Message) error {
	prev := n.clustersSnapshot()
	next := map[string]*clusterState{}
	for _, m := range msgs {
		c := m.(*clusterpb.Cluster)
		switch c.GetType() {
		case clusterpb.Cluster_STATIC, clusterpb.Cluster_STRICT_DNS:
		default:
			return fmt.Errorf("cluster %s: type %s: %w", c.GetName(), c.GetType(), errUnsupported)
		}
		cs := &clusterState{proto: c}
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range le.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				if sa == nil {
					return fmt.Errorf("cluster %s: endpoint without a socket address: %w", c.GetName(), errUnsupported)
				}
				cs.endpoints = append(cs.endpoints, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
			}
		}
		if addr, ok := n.cfg.ClusterAddrs[c.GetName()]; ok {
			cs.endpoints = []string{addr}
		}
		if old, ok := prev[c.GetName()]; ok && proto.Equal(old.proto, c) {
			cs = old // unchanged: keep its round-robin position
		}
		next[c.GetName()] = cs
	}
	n.mu.Lock()
	n.clusters = next
	n.mu.Unlock()
	return nil
}

func (n *node) clustersSnapshot() map[string]*clusterState {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.clusters
}

func (n *node) applyListeners(msgs []proto.Message) error {
	type parsed struct {
		l   *listenerpb.Listener
		hcm *hcmpb.HttpConnectionManager
	}
	var ps []parsed
	for _, m := range msgs {
		l := m.(*listenerpb.Listener)
		hcms, err := ads.HCMs(l)
		if err != nil {
			return err
		}
		if len(hcms) != 1 || len(l.GetFilterChains()) != 1 {
			return fmt.Errorf("listener %s: only one filter chain with one http connection manager: %w", l.GetName(), errUnsupported)
		}
		if err := validate(hcms[0]); err != nil {
			return fmt.Errorf("listener %s: %w", l.GetName(), err)
		}
		if err := checkHCM(hcms[0]); err != nil {
			return fmt.Errorf("listener %s: %w", l.GetName(), err)
		}
		if l.GetAddress().GetSocketAddress() == nil {
			return fmt.Errorf("listener %s: address is not a socket address: %w", l.GetName(), errUnsupported)
		}
		ps = append(ps, parsed{l, hcms[0]})
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]bool{}
	n.ldsOrder = n.ldsOrder[:0]
	for _, p := range ps {
		if !seen[p.l.GetName()] {
			n.ldsOrder = append(n.ldsOrder, p.l.GetName())
		}
		seen[p.l.GetName()] = true
		ls, ok := n.listeners[p.l.GetName()]
		if !ok {
			ls = &listenerState{}
			n.listeners[p.l.GetName()] = ls
		}
		ls.latest, ls.hcm = p.l, p.hcm
	}
	for name, ls := range n.listeners {
		if seen[name] {
			continue
		}
		// Removed from LDS: drain it.
		if ls.active != nil {
			n.drains++
			n.shutdown(ls.active.srv)
		}
		delete(n.listeners, name)
	}
	return nil
}

// checkHCM accepts the HTTP connection managers wasmfleet sends: routes from
// RDS or inline, filters from config_discovery, the router last.
func checkHCM(m *hcmpb.HttpConnectionManager) error {
	if m.GetRds() == nil && m.GetRouteConfig() == nil {
		return fmt.Errorf("http connection manager: routes must come from rds or route_config: %w", errUnsupported)
	}
	fs := m.GetHttpFilters()
	if len(fs) == 0 || !isRouter(fs[len(fs)-1]) {
		return fmt.Errorf("http connection manager: the last http filter must be %s", RouterName)
	}
	for _, f := range fs[:len(fs)-1] {
		cd := f.GetConfigDiscovery()
		if cd == nil {
			return fmt.Errorf("http filter %s: only config_discovery filters before the router: %w", f.GetName(), errUnsupported)
		}
		if cd.GetDefaultConfig() != nil || cd.GetApplyDefaultConfigWithoutWarming() {
			return fmt.Errorf("http filter %s: default_config: %w", f.GetName(), errUnsupported)
		}
	}
	return nil
}

func isRouter(f *hcmpb.HttpFilter) bool {
	if tc := f.GetTypedConfig(); tc != nil {
		return tc.MessageIs(&routerpb.Router{})
	}
	return f.GetName() == RouterName
}

func (n *node) applyRoutes(msgs []proto.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	// State of the world for RDS carries the requested names only; a name
	// absent from a response keeps its config.
	for _, m := range msgs {
		rc := m.(*routepb.RouteConfiguration)
		n.routes[rc.GetName()] = rc
	}
	return nil
}

// reconcile starts serving every listener whose latest config differs from
// the one serving and is warm (see warm). Replacing a serving listener is a
// drain. Then it brings the ECDS watches in line with the listeners. It
// returns an error when a listener cannot bind, which NACKs the update that
// caused it.
func (n *node) reconcile() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil // a fetch that ends after stop starts nothing
	}
	defer n.syncWatches()
	var errs []error
	names := make([]string, 0, len(n.listeners))
	for name := range n.listeners {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ls := n.listeners[name]
		if ls.active != nil && proto.Equal(ls.active.proto, ls.latest) {
			continue
		}
		if !n.warm(ls.hcm) {
			continue
		}
		if err := n.activate(name, ls); err != nil {
			errs = append(errs, fmt.Errorf("listener %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// warm says whether a listener's init manager would be done: its route
// configuration has arrived, the watch of every filter it discovers is ready
// (a config arrived, or an ECDS response was rejected, or the initial fetch
// timed out: a slot can be warm with no config, see missingConfig), and no
// slot's remote code is still being fetched. Callers hold mu.
func (n *node) warm(m *hcmpb.HttpConnectionManager) bool {
	routes, exts := ads.Refs(m)
	for _, r := range routes {
		if _, ok := n.routes[r]; !ok {
			return false
		}
	}
	for _, e := range exts {
		if s := n.slots[e]; s != nil && s.cur != nil {
			// Remote code being fetched holds the listener: Envoy registers
			// the fetch as an init target of the warming listener.
			if s.cur.state == dataplane.CodePending {
				return false
			}
			continue
		}
		if w := n.watches[e]; w == nil || !w.ready {
			return false
		}
	}
	return true
}

// activate binds (or keeps) the listener's socket and makes the latest
// config serve new requests. Callers hold mu.
func (n *node) activate(name string, ls *listenerState) error {
	bind, ok := n.cfg.ListenAddrs[name]
	if !ok {
		sa := ls.latest.GetAddress().GetSocketAddress()
		bind = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}
	next := &activeListener{proto: ls.latest, hcm: ls.hcm, bind: bind}
	old := ls.active
	if old != nil {
		n.drains++
		n.log.Info("listener drained", zap.String("listener", name))
		if old.bind == bind {
			next.addr, next.srv = old.addr, old.srv
			ls.active = next
			return nil
		}
	}
	lis, err := net.Listen("tcp", bind)
	if err != nil {
		return err
	}
	next.addr = lis.Addr().String()
	next.srv = &http.Server{Handler: n.handler(name)}
	ls.active = next
	n.goBackground(func() { _ = next.srv.Serve(lis) })
	if old != nil {
		n.shutdown(old.srv)
	}
	return nil
}

// shutdown lets in-flight requests on srv finish and closes it.
func (n *node) shutdown(srv *http.Server) {
	n.goBackground(func() {
		if srv.Shutdown(n.ctx) != nil {
			srv.Close()
		}
	})
}
