package controller

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasm "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/server"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/xdscache"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// deltaPlane is a control plane as cmd/wasmfleet wires it, minus the
// sources: a controller over the xDS cache, served by the xDS server on a
// loopback port, with nodes speaking delta xDS to it over real gRPC.
type deltaPlane struct {
	*harness
	addr string
	stop func()
}

func startDeltaPlane(t *testing.T, cfg config.Config) *deltaPlane {
	t.Helper()
	log := zaptest.NewLogger(t)
	xc, err := xdscache.New(xdscache.Config{ADS: true, Log: server.Logger(log)})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, cfg, fleet.Config{}, func(c *Config) { c.Cache = xc })
	h.cache = xc
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := server.New(server.Config{Listener: lis, Cache: xc, Fleet: h.fleet, Log: log}).Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	p := &deltaPlane{harness: h, addr: lis.Addr().String()}
	p.stop = sync.OnceFunc(func() { cancel(); <-served; h.stop() })
	t.Cleanup(p.stop)
	return p
}

// deltaNode follows Envoy's delta ADS client as far as the sequencing
// depends on it:
//
//   - On a new stream, the first request of each type subscribes to every
//     name the node is interested in and reports, in
//     initial_resource_versions, the version of each resource it has
//     (DeltaSubscriptionState::getNextRequestAckless in
//     source/extensions/config_subscription/grpc/delta_subscription_state.cc).
//
//   - A response's resources are handed to their watches one by one, in
//     the order of a hash map (the delta WatchMap::onConfigUpdate in
//     source/extensions/config_subscription/grpc/watch_map.cc): each ECDS
//     slot changes on its own, so the routes and slots are checked after
//     every single resource (taken here in the response's order).
//
//   - A rejected response leaves the versions the node reports as they were
//     (DeltaSubscriptionState::handleResponse updates them only after
//     handleGoodResponse's onConfigUpdate succeeded); the resources applied
//     before the one that failed stay applied, as FACTS.md says of ECDS.
//
//   - A listener subscribes to its route configuration and to every filter
//     slot of its HTTP connection manager before its update is ACKed.
//
//   - A new listener serves only once its route configuration and the first
//     config of every filter slot arrived (the init targets of
//     RdsRouteConfigSubscription and of FilterConfigSubscription, in
//     source/common/rds/rds_route_config_subscription.cc and
//     source/common/filter/config_discovery_impl.cc), so what it is sent
//     before is not checked.
//
// Listeners are never drained here: what the test watches is the routes and
// the filter slots of one HTTP connection manager.
type deltaNode struct {
	t  *testing.T
	id string
	// reject returns why the node fails to load a filter config, or "".
	reject func(*wasm.PluginConfig) string

	mu sync.Mutex
	// versions are the resources the node has, by type and name.
	versions map[string]map[string]string
	// subscribed are the names of each type the node is interested in.
	subscribed map[string][]string
	// routes holds, per route configuration, the slots each route enables.
	routes map[string][][]string
	// slots is the filter each slot runs ("" for the no-op).
	slots map[string]string
	// warm: the listener serves requests (it has every config it waits for).
	warm       bool
	violations []string
	nacks      int
}

func newDeltaNode(t *testing.T, id string) *deltaNode {
	return &deltaNode{
		t: t, id: id,
		versions:   map[string]map[string]string{},
		subscribed: map[string][]string{},
		routes:     map[string][][]string{},
		slots:      map[string]string{},
	}
}

// order is the types the node subscribes to, in the order Envoy's delta
// ADS mux sends their first requests on a new stream: the order their
// subscriptions were added (NewGrpcMuxImpl::addSubscription appends to
// subscription_ordering_, which whoWantsToSendDiscoveryRequest walks, in
// source/extensions/config_subscription/grpc/new_grpc_mux_impl.cc), and a
// listener's routes and filter configs are subscribed once it arrives.
var order = []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ExtensionConfigType}

// connect runs one stream to addr until the returned stop is called.
func (n *deltaNode) connect(addr string) (stop func()) {
	n.t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.mu.Lock()
		var first []*discovery.DeltaDiscoveryRequest
		for _, typ := range order {
			if typ != resourcev3.ListenerType && len(n.subscribed[typ]) == 0 {
				continue
			}
			first = append(first, &discovery.DeltaDiscoveryRequest{
				Node: &core.Node{Id: n.id}, TypeUrl: typ,
				ResourceNamesSubscribe:  slices.Clone(n.subscribed[typ]),
				InitialResourceVersions: maps.Clone(n.versions[typ]),
			})
		}
		n.mu.Unlock()
		for _, req := range first {
			if s.Send(req) != nil {
				return
			}
		}
		for {
			resp, err := s.Recv()
			if err != nil {
				return
			}
			for _, req := range n.handle(resp) {
				if s.Send(req) != nil {
					return
				}
			}
		}
	}()
	return func() { cancel(); <-done; conn.Close() }
}

// handle applies a response and returns the requests the node sends for
// it: new subscriptions, then the ACK or NACK.
func (n *deltaNode) handle(resp *discovery.DeltaDiscoveryResponse) []*discovery.DeltaDiscoveryRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	typ := resp.GetTypeUrl()
	var out []*discovery.DeltaDiscoveryRequest
	ack := &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.GetNonce()}
	for _, r := range resp.GetResources() {
		if reason := n.apply(typ, r); reason != "" {
			n.nacks++
			ack.ErrorDetail = &status.Status{Code: 13, Message: reason}
			return append(out, ack)
		}
		if typ == resourcev3.ListenerType {
			out = append(out, n.subscribe(r.GetResource())...)
		}
	}
	if n.versions[typ] == nil {
		n.versions[typ] = map[string]string{}
	}
	for _, r := range resp.GetResources() {
		n.versions[typ][r.GetName()] = r.GetVersion()
	}
	for _, name := range resp.GetRemovedResources() {
		delete(n.versions[typ], name)
	}
	return append(out, ack)
}

// subscribe returns the requests a new listener makes for the route
// configuration and filter slots it refers to.
func (n *deltaNode) subscribe(a *anypb.Any) []*discovery.DeltaDiscoveryRequest {
	var l listener.Listener
	var m hcm.HttpConnectionManager
	if err := a.UnmarshalTo(&l); err != nil || l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&m) != nil {
		n.violate("listener %s: cannot read its connection manager", a.GetTypeUrl())
		return nil
	}
	names := map[string][]string{resourcev3.RouteType: {m.GetRds().GetRouteConfigName()}}
	for _, f := range m.GetHttpFilters() {
		if f.GetConfigDiscovery() != nil {
			names[resourcev3.ExtensionConfigType] = append(names[resourcev3.ExtensionConfigType], f.GetName())
		}
	}
	var out []*discovery.DeltaDiscoveryRequest
	for _, typ := range order[1:] {
		var fresh []string
		for _, name := range names[typ] {
			if !slices.Contains(n.subscribed[typ], name) {
				fresh = append(fresh, name)
			}
		}
		if len(fresh) > 0 {
			n.subscribed[typ] = append(n.subscribed[typ], fresh...)
			out = append(out, &discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResourceNamesSubscribe: fresh})
		}
	}
	return out
}

// apply takes one resource into the node's routes or slots and checks
// them; it returns why the node rejects it, or "".
func (n *deltaNode) apply(typ string, r *discovery.Resource) string {
	switch typ {
	case resourcev3.RouteType:
		var rc route.RouteConfiguration
		if err := r.GetResource().UnmarshalTo(&rc); err != nil {
			return err.Error()
		}
		var enabled [][]string
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				enabled = append(enabled, slices.Sorted(maps.Keys(rt.GetTypedPerFilterConfig())))
			}
		}
		n.routes[r.GetName()] = enabled
	case resourcev3.ExtensionConfigType:
		var tec core.TypedExtensionConfig
		if err := r.GetResource().UnmarshalTo(&tec); err != nil {
			return err.Error()
		}
		var w wasmfilter.Wasm
		filter := ""
		if tec.GetTypedConfig().UnmarshalTo(&w) == nil {
			if n.reject != nil {
				if reason := n.reject(w.GetConfig()); reason != "" {
					return reason
				}
			}
			filter = w.GetConfig().GetName()
		}
		n.slots[r.GetName()] = filter
	}
	n.check()
	return ""
}

// check records a violation of make-before-break: a route that enables a
// slot without a filter config, or runs one filter twice (a reorder swapped
// into enabled slots).
func (n *deltaNode) check() {
	if !n.warm {
		n.warm = len(n.routes) > 0 && !slices.ContainsFunc(n.subscribed[resourcev3.ExtensionConfigType], func(s string) bool {
			_, ok := n.slots[s]
			return !ok
		})
		if !n.warm {
			return
		}
	}
	for rc, rs := range n.routes {
		for _, slots := range rs {
			var seen []string
			for _, s := range slots {
				f, ok := n.slots[s]
				switch {
				case !ok || f == "":
					n.violate("routes %s enable %s, which has no filter config", rc, s)
				case slices.Contains(seen, f):
					n.violate("routes %s run %s twice (slots %v)", rc, f, slots)
				}
				seen = append(seen, f)
			}
		}
	}
}

func (n *deltaNode) violate(format string, args ...any) {
	n.violations = append(n.violations, fmt.Sprintf(format, args...))
}

// chains returns, per route, the filters it runs in slot order (a canary
// slot named with a "+").
func (n *deltaNode) chains() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, rc := range slices.Sorted(maps.Keys(n.routes)) {
		for _, slots := range n.routes[rc] {
			var fs []string
			for _, s := range sortSlots(slots) {
				f := n.slots[s]
				if strings.HasSuffix(s, ".canary") {
					f = "+" + f
				}
				fs = append(fs, f)
			}
			out = append(out, strings.Join(fs, ","))
		}
	}
	return out
}

// sortSlots orders slot names by position (slot 10 after slot 9).
func sortSlots(slots []string) []string {
	pos := func(s string) (p int, canary bool) {
		fmt.Sscanf(strings.TrimPrefix(s, "wasmfleet.slot."), "%d", &p)
		return p, strings.HasSuffix(s, ".canary")
	}
	return slices.SortedFunc(slices.Values(slots), func(a, b string) int {
		pa, ca := pos(a)
		pb, cb := pos(b)
		if pa != pb {
			return pa - pb
		}
		if ca == cb {
			return 0
		}
		if ca {
			return 1
		}
		return -1
	})
}

// runs waits until every route of the node runs exactly the chains want
// (one per route, in order) and fails on any violation seen.
func (n *deltaNode) runs(want ...string) {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for got := n.chains(); !slices.Equal(got, want); got = n.chains() {
		if time.Now().After(deadline) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.t.Fatalf("%s runs %q, want %q; slots %v; %d violations %q", n.id, got, want, n.slots, len(n.violations), n.violations)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.clean()
}

// clean fails the test on any violation seen so far.
func (n *deltaNode) clean() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.violations) > 0 {
		n.t.Fatalf("%s: %d violations of make-before-break, first: %s", n.id, len(n.violations), n.violations[0])
	}
}

// remote lists filters with remote code: small responses, and the digest
// in each config tells the versions apart.
func remote(names ...string) []config.Filter {
	fs := make([]config.Filter, len(names))
	for i, name := range names {
		fs[i] = config.Filter{Name: name, Code: config.CodeRemote}
	}
	return fs
}

// sha256Of is the module digest a filter config runs.
func sha256Of(pc *wasm.PluginConfig) types.Digest {
	return types.Digest(pc.GetVmConfig().GetCode().GetRemote().GetSha256())
}

// TestDeltaChainChanges: a delta node follows every kind of chain change
// (a filter added, a request split, a filter removed) without stalling and
// without a route ever enabling a slot before its config arrived.
func TestDeltaChainChanges(t *testing.T) {
	cfg := config.Default()
	cfg.Filters = remote("auth", "logging")
	p := startDeltaPlane(t, cfg)
	n := newDeltaNode(t, "n1")
	defer n.connect(p.addr)()
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")

	p.drop("auth", hello)
	n.runs("auth")
	p.drop("logging", variant(hello, 1))
	n.runs("auth,logging")

	split := cfg
	split.Filters = remote("auth", "logging")
	split.Filters[0].Rollout = config.Rollout{By: config.ByRequest, Percent: new(30)}
	if err := p.ctrl.Reconfigure(context.Background(), split); err != nil {
		t.Fatal(err)
	}
	p.drop("auth", variant(hello, 2))
	n.runs("+auth,logging", "auth,logging")

	p.events <- types.Event{Kind: types.ModuleRemoved, Filter: "logging", Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/logging.wasm"}}
	n.runs("+auth", "auth")
}

// TestDeltaReconnect: a delta node that reconnects reports the routes and
// slots it has in initial_resource_versions, and the control plane it
// reaches (the same one after a change, or a restarted one that orders the
// chain another way) changes them make-before-break from there.
func TestDeltaReconnect(t *testing.T) {
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	t.Run("same control plane", func(t *testing.T) {
		cfg := config.Default()
		cfg.Filters = remote("auth", "logging")
		p := startDeltaPlane(t, cfg)
		n := newDeltaNode(t, "n1")
		stop := n.connect(p.addr)
		p.drop("auth", hello)
		n.runs("auth")
		stop()
		p.wait("n1 to leave", func() bool { _, ok := p.fleet.Node("n1"); return !ok })

		p.drop("logging", variant(hello, 1))
		p.wait("logging admitted", func() bool { return admitted(p.status("logging")) })
		defer n.connect(p.addr)()
		n.runs("auth,logging")
	})
	t.Run("restarted control plane", func(t *testing.T) {
		cfg := config.Default()
		cfg.Filters = remote("auth", "logging")
		first := startDeltaPlane(t, cfg)
		n := newDeltaNode(t, "n1")
		stop := n.connect(first.addr)
		first.drop("auth", hello)
		first.drop("logging", variant(hello, 1))
		n.runs("auth,logging")
		stop()
		first.stop()

		cfg.Filters = remote("logging", "auth")
		second := startDeltaPlane(t, cfg)
		second.drop("logging", variant(hello, 1))
		second.drop("auth", hello)
		second.wait("both filters admitted", func() bool {
			return admitted(second.status("auth")) && admitted(second.status("logging"))
		})
		defer n.connect(second.addr)()
		n.runs("logging,auth")
	})
	t.Run("restarted control plane, nothing to change", func(t *testing.T) {
		cfg := config.Default()
		cfg.Filters = remote("auth")
		first := startDeltaPlane(t, cfg)
		n := newDeltaNode(t, "n1")
		stop := n.connect(first.addr)
		first.drop("auth", hello)
		n.runs("auth")
		stop()
		first.stop()

		second := startDeltaPlane(t, cfg)
		v1 := second.drop("auth", hello)
		second.wait("auth admitted", func() bool { return admitted(second.status("auth")) })
		defer n.connect(second.addr)()
		// The node runs v1 already: its ACK of the answer to its report
		// is all that can promote it.
		second.wait("v1 stable", func() bool { st := second.status("auth"); return st.Stable == v1 && st.Candidate == "" })
		n.runs("auth")
	})
}

// admitted reports whether a filter has a version to serve (with no node
// connected, a new version stays the candidate).
func admitted(st FilterStatus) bool { return st.Stable != "" || st.Candidate != "" }

// TestDeltaNACK: a delta node that rejects a candidate's config has it
// rolled back, no route enabling a slot without a config meanwhile (the
// node's make-before-break check), and takes the next version.
func TestDeltaNACK(t *testing.T) {
	cfg := config.Default()
	cfg.Filters = remote("auth")
	p := startDeltaPlane(t, cfg)
	n := newDeltaNode(t, "n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	bad := variant(hello, 2)
	n.reject = func(pc *wasm.PluginConfig) string {
		if sha256Of(pc) == types.DigestOf(bad) {
			return "failed to load Wasm module due to a missing import"
		}
		return ""
	}
	defer n.connect(p.addr)()

	v1 := p.drop("auth", hello)
	n.runs("auth")
	v2 := p.drop("auth", bad)
	p.wait("v2 rolled back", func() bool {
		st := p.status("auth")
		return st.Stable == v1 && st.Candidate == "" && slices.ContainsFunc(st.Bad, func(b types.BadMark) bool { return b.Digest == v2 })
	})
	v3 := p.drop("auth", variant(hello, 3))
	p.wait("v3 stable", func() bool { return p.status("auth").Stable == v3 })
	n.runs("auth")
	n.mu.Lock()
	nacks := n.nacks
	n.mu.Unlock()
	if nacks == 0 {
		t.Fatal("the node never rejected v2")
	}
}
