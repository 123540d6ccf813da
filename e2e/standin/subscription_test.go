package standin

import (
	"context"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// newDirectNode returns a node with no control plane: the test hands it
// responses through Handle, one at a time, as the ADS client does. The test
// chooses their order and content and can look at the node between two of
// them, which a go-control-plane server does not allow.
func newDirectNode(t *testing.T, listeners ...string) *node {
	t.Helper()
	addrs := map[string]string{}
	for _, l := range listeners {
		addrs[l] = "127.0.0.1:0"
	}
	dn, err := New(Config{
		Config:       dataplane.Config{NodeID: nodeID, Cluster: "test", XDSAddr: "unused:1", ListenAddrs: addrs},
		Log:          zaptest.NewLogger(t),
		Seed:         42,
		VMsPerFilter: 1,
		Interpreter:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := dn.(*node)
	ctx, cancel := context.WithCancel(context.Background())
	host, err := newWasmHost(ctx, n)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n.mu.Lock()
	n.ctx, n.host = ctx, host
	n.mu.Unlock()
	t.Cleanup(func() {
		cancel()
		n.stop()
	})
	return n
}

// respond hands n one response of typ holding items in their order.
func respond(t *testing.T, n *node, typ, version string, items ...proto.Message) error {
	t.Helper()
	resp := &discovery.DiscoveryResponse{TypeUrl: typ, VersionInfo: version, Nonce: version}
	for _, it := range items {
		a, err := anypb.New(it)
		if err != nil {
			t.Fatal(err)
		}
		resp.Resources = append(resp.Resources, a)
	}
	return n.Handle(resp)
}

// mustRespond is respond for a response that must be ACKed.
func mustRespond(t *testing.T, n *node, typ, version string, items ...proto.Message) {
	t.Helper()
	if err := respond(t, n, typ, version, items...); err != nil {
		t.Fatalf("%s %s NACKed: %v", typ, version, err)
	}
}

// serveBase hands n the clusters, listener ingress with slots (in that
// http_filters order) and its routes, as go-control-plane orders them.
func serveBase(t *testing.T, e *env, n *node, l *listenerpb.Listener, routes ...xdstest.Route) {
	t.Helper()
	mustRespond(t, n, dataplane.ClusterType, "c1", xdstest.Cluster(t, upstream, strings.TrimPrefix(e.upstream.URL, "http://")))
	mustRespond(t, n, dataplane.ListenerType, "l1", l)
	mustRespond(t, n, dataplane.RouteType, "r1", xdstest.Routes(t, l.GetName(), routes...))
}

// ecds turns configs into ECDS resources for respond.
func ecds(tecs ...*core.TypedExtensionConfig) []proto.Message {
	out := make([]proto.Message, len(tecs))
	for i, x := range tecs {
		out[i] = x
	}
	return out
}

func badconfig(t *testing.T, slot string) *core.TypedExtensionConfig {
	return xdstest.Wasm(t, slot, xdstest.Filter{Name: "bad", Inline: guest(t, "badconfig")})
}

// withFetchTimeout sets initial_fetch_timeout on every discovered filter
// of l's connection manager.
func withFetchTimeout(t *testing.T, l *listenerpb.Listener, d time.Duration) *listenerpb.Listener {
	t.Helper()
	f := l.GetFilterChains()[0].GetFilters()[0]
	m := &hcmpb.HttpConnectionManager{}
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	for _, hf := range m.GetHttpFilters() {
		if cd := hf.GetConfigDiscovery(); cd != nil {
			cd.GetConfigSource().InitialFetchTimeout = durationpb.New(d)
		}
	}
	f.ConfigType = &listenerpb.Filter_TypedConfig{TypedConfig: xdstest.Any(t, m)}
	return l
}

// TestEachTypeTakesEffectOnItsOwn: a response changes the node as soon as
// it is handled. Nothing holds an RDS change back until the ECDS change of
// the same snapshot arrives (Envoy has no such thing: GrpcMuxImpl hands each
// response to its own type's watches).
func TestEachTypeTakesEffectOnItsOwn(t *testing.T) {
	e := newEnv(t)
	n := newDirectNode(t, listener)
	serveBase(t, e, n, xdstest.Listener(t, listener, 10000, slot0, slot1), xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1}})
	mustRespond(t, n, dataplane.ExtensionType, "e1", ecds(tagger(t, slot0, "a"), tagger(t, slot1, "b"))...)
	addr := listenerAddr(t, n)
	if got := chainOf(t, addr); got != "a,b" {
		t.Fatalf("chain %q, want a,b", got)
	}
	mustRespond(t, n, dataplane.RouteType, "r2", xdstest.Routes(t, listener, xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot1}}))
	if got := chainOf(t, addr); got != "b" {
		t.Errorf("after the RDS response alone: chain %q, want b (the new routes with the old filters)", got)
	}
	mustRespond(t, n, dataplane.ExtensionType, "e2", ecds(tagger(t, slot0, "a"), tagger(t, slot1, "c"))...)
	if got := chainOf(t, addr); got != "c" {
		t.Errorf("after the ECDS response: chain %q, want c", got)
	}
}

// TestECDSResponseStopsAtFirstFailure follows GrpcMuxImpl's loop over its
// watches: the newest watch is visited first, the first resource that fails
// ends the response, the ones visited before it stay applied and the ones
// after it wait for the re-send, where the failed one is skipped. The bad
// slot starts with the no-op config and the good one with tagger a; the
// response gives the good one tagger c and the bad one a config that fails.
func TestECDSResponseStopsAtFirstFailure(t *testing.T) {
	tests := []struct {
		name string
		// filters is the listener's http_filters order, which is the order
		// the watches start in; the mux visits them in reverse.
		filters []string
		bad     string
		// failed is the chain after the failing response: c if the good
		// slot was visited before the bad one, a if not. Its re-send always
		// ends at c.
		failed string
	}{
		// The response lists slot 0 first. Here that is the failing one,
		// and the good one still applies: the response's order does not
		// decide.
		{name: "failure visited last: the others apply", filters: []string{slot0, slot1}, bad: slot0, failed: "c"},
		{name: "failure visited first: the others wait for the re-send", filters: []string{slot0, slot1}, bad: slot1, failed: "a"},
		{name: "the watch order follows the filter order", filters: []string{slot1, slot0}, bad: slot0, failed: "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			n := newDirectNode(t, listener)
			serveBase(t, e, n, xdstest.Listener(t, listener, 10000, tc.filters...),
				xdstest.Route{Prefix: "/", Cluster: upstream, Slots: tc.filters})
			good := slot0
			if tc.bad == slot0 {
				good = slot1
			}
			// Resources in slot order.
			inSlotOrder := func(g, b *core.TypedExtensionConfig) []proto.Message {
				if good == slot0 {
					return ecds(g, b)
				}
				return ecds(b, g)
			}
			mustRespond(t, n, dataplane.ExtensionType, "e1", inSlotOrder(tagger(t, good, "a"), xdstest.Noop(t, tc.bad))...)
			addr := listenerAddr(t, n)
			if got := chainOf(t, addr); got != "a" {
				t.Fatalf("chain %q, want a", got)
			}

			next := inSlotOrder(tagger(t, good, "c"), badconfig(t, tc.bad))
			err := respond(t, n, dataplane.ExtensionType, "e2", next...)
			if err == nil || !strings.Contains(err.Error(), tc.bad) || strings.Contains(err.Error(), good) {
				t.Errorf("nack %v: want the reason of %s alone", err, tc.bad)
			}
			if ts := n.Status().Types[dataplane.ExtensionType]; ts.Version != "e1" || ts.Rejected != "e2" {
				t.Errorf("type status %+v: want e1 kept, e2 rejected", ts)
			}
			if got := chainOf(t, addr); got != tc.failed {
				t.Errorf("after the failing response: chain %q, want %q", got, tc.failed)
			}

			// go-control-plane answers the NACK with the same response.
			if err := respond(t, n, dataplane.ExtensionType, "e2", next...); err != nil {
				t.Errorf("the re-send was NACKed: %v", err)
			}
			if got := chainOf(t, addr); got != "c" {
				t.Errorf("after the re-send: chain %q, want c", got)
			}
			if got := countLogs(n, "badconfig: refusing configuration"); got != 1 {
				t.Errorf("the failing config was built %d times, want once", got)
			}
			if x := n.Status().Extensions[good]; x.Version != "e2" || x.Error != "" {
				t.Errorf("%s status %+v: want version e2 running", good, x)
			}
		})
	}
}

// TestStateOfTheWorldKeepsAbsentResources: an ECDS or RDS response that
// leaves out a resource the node subscribes to leaves that resource as it
// was. GrpcMuxImpl::processDiscoveryResources calls a named watch only when
// the response holds one of its names, and no removal is signalled.
func TestStateOfTheWorldKeepsAbsentResources(t *testing.T) {
	tests := []struct {
		name  string
		typ   string
		items func(t *testing.T) []proto.Message
		chain string
	}{
		{name: "ecds without slot 1", typ: dataplane.ExtensionType, chain: "c,b",
			items: func(t *testing.T) []proto.Message { return ecds(tagger(t, slot0, "c")) }},
		{name: "rds with another route configuration only", typ: dataplane.RouteType, chain: "b",
			items: func(t *testing.T) []proto.Message {
				return []proto.Message{xdstest.Routes(t, "elsewhere", xdstest.Route{Prefix: "/", Cluster: upstream})}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			n := newDirectNode(t, listener)
			serveBase(t, e, n, xdstest.Listener(t, listener, 10000, slot0, slot1),
				xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1}})
			mustRespond(t, n, dataplane.ExtensionType, "e1", ecds(xdstest.Noop(t, slot0), tagger(t, slot1, "b"))...)
			addr := listenerAddr(t, n)
			mustRespond(t, n, tc.typ, "v2", tc.items(t)...)
			if got := chainOf(t, addr); got != tc.chain {
				t.Errorf("chain %q, want %q", got, tc.chain)
			}
			if x := n.Status().Extensions[slot1]; x.Version != "e1" || x.Code != dataplane.CodeReady {
				t.Errorf("slot 1 status %+v: want version e1 still running", x)
			}
		})
	}
}

// TestRejectedFirstConfigServes: a slot whose first config is rejected has
// no config, but FilterConfigSubscription::onConfigUpdateFailed marks its
// init target ready, so the listener serves. A route that enables the slot
// gets Envoy's MissingConfigFilter in its place (500, empty body); the
// filters before it run, the ones after it do not, and routes that leave the
// slot disabled are not affected. Runs against go-control-plane, which
// re-sends the rejected response; that re-send is ACKed without a build.
func TestRejectedFirstConfigServes(t *testing.T) {
	const refused = "badconfig: refusing configuration"
	routes := []xdstest.Route{
		{Prefix: "/zero", Cluster: upstream, Slots: []string{slot0}},
		{Prefix: "/one", Cluster: upstream, Slots: []string{slot1}},
		{Prefix: "/both", Cluster: upstream, Slots: []string{slot0, slot1}},
		{Prefix: "/", Cluster: upstream},
	}
	type want struct {
		path   string
		hdr    []string
		status int
		chain  string
	}
	tests := []struct {
		name  string
		exts  func(t *testing.T) []*core.TypedExtensionConfig
		wants []want
	}{
		{
			name: "slot 0 rejected, slot 1 tags",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{badconfig(t, slot0), tagger(t, slot1, "b")}
			},
			wants: []want{
				{path: "/zero", status: 500},
				{path: "/one", status: 200, chain: "b"},
				{path: "/both", status: 500}, // the missing filter comes first
				{path: "/", status: 200},
			},
		},
		{
			name: "slot 0 gates, slot 1 rejected",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{
					xdstest.Wasm(t, slot0, xdstest.Filter{Name: "gate", Inline: guest(t, "gate")}), badconfig(t, slot1),
				}
			},
			wants: []want{
				{path: "/zero", hdr: []string{"x-pass", "1"}, status: 200},
				{path: "/one", status: 500},
				{path: "/both", status: 403}, // the gate runs before the missing filter
				{path: "/both", hdr: []string{"x-pass", "1"}, status: 500},
				{path: "/", status: 200},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rs := e.config(t, tc.exts(t)...)
			// No initial fetch timeout: only the rejection lets the listener warm.
			rs[xdstest.ListenerType] = []types.Resource{withFetchTimeout(t, xdstest.Listener(t, listener, 10000, slot0, slot1), 0)}
			rs[xdstest.RouteType] = []types.Resource{xdstest.Routes(t, listener, routes...)}
			e.xds.Set(t, nodeID, rs)
			sent := xdstest.Version(t, rs[xdstest.ExtensionType])
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)
			awaitECDS(t, n, sent)
			if ts := n.Status().Types[dataplane.ExtensionType]; ts.Nacks != 1 {
				t.Errorf("type status %+v: want one nack, then the re-send acked", ts)
			}
			if got := countLogs(n, refused); got != 1 {
				t.Errorf("the rejected config was built %d times, want once", got)
			}
			for _, w := range tc.wants {
				r := get(t, addr, w.path, w.hdr...)
				if r.status != w.status || r.header.Get("x-seen-chain") != w.chain {
					t.Errorf("GET %s %v: %d chain %q, want %d chain %q (%q)", w.path, w.hdr, r.status, r.header.Get("x-seen-chain"), w.status, w.chain, r.body)
				}
				if w.status == 500 && r.body != "" {
					t.Errorf("GET %s: body %q, want none (Envoy's MissingConfigFilter sends no body)", w.path, r.body)
				}
			}
		})
	}
}

// TestRejectedResponseReadiesEveryWatch: a rejected ECDS response marks
// every ECDS subscription ready, also those it never reached. Slot 1's first
// config fails and is visited first, so slot 0's first config is not applied
// either, and the listener serves with neither until the re-send brings
// slot 0's.
func TestRejectedResponseReadiesEveryWatch(t *testing.T) {
	e := newEnv(t)
	n := newDirectNode(t, listener)
	serveBase(t, e, n, xdstest.Listener(t, listener, 10000, slot0, slot1),
		xdstest.Route{Prefix: "/zero", Cluster: upstream, Slots: []string{slot0}},
		xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1}})
	if got := n.Listeners(); len(got) != 0 {
		t.Fatalf("listeners %v serve before any ECDS response, want none", got)
	}
	first := ecds(tagger(t, slot0, "a"), badconfig(t, slot1))
	if err := respond(t, n, dataplane.ExtensionType, "e1", first...); err == nil {
		t.Fatal("the response with a failing config was ACKed")
	}
	addr := n.Listeners()[listener]
	if addr == "" {
		t.Fatal("the listener does not serve after the rejected response")
	}
	if r := get(t, addr, "/zero"); r.status != 500 {
		t.Errorf("/zero before the re-send: %d, want 500 (slot 0 not applied yet)", r.status)
	}
	mustRespond(t, n, dataplane.ExtensionType, "e1", first...)
	if r := get(t, addr, "/zero"); r.status != 200 || r.header.Get("x-seen-chain") != "a" {
		t.Errorf("/zero after the re-send: %d chain %q, want 200 a", r.status, r.header.Get("x-seen-chain"))
	}
	if r := get(t, addr, "/"); r.status != 500 || r.header.Get("x-seen-chain") != "" {
		t.Errorf("/ after the re-send: %d chain %q, want 500 before the upstream (slot 1 has no config)", r.status, r.header.Get("x-seen-chain"))
	}
}

// TestInitialFetchTimeout: a listener waits for its discovered filters'
// first configs for initial_fetch_timeout at most
// (GrpcSubscriptionImpl::start's timer), then serves without them; routes
// that enable a slot with no config answer 500. A timeout of 0 waits for
// ever. A config that arrives later takes effect as usual.
func TestInitialFetchTimeout(t *testing.T) {
	const (
		quick, patient = "quick", "patient"
		slotQ, slotP   = "wasmfleet.slot.q", "wasmfleet.slot.p"
	)
	e := newEnv(t)
	n := newDirectNode(t, quick, patient)
	mustRespond(t, n, dataplane.ClusterType, "c1", xdstest.Cluster(t, upstream, strings.TrimPrefix(e.upstream.URL, "http://")))
	mustRespond(t, n, dataplane.ListenerType, "l1",
		withFetchTimeout(t, xdstest.Listener(t, quick, 10001, slotQ), 50*time.Millisecond),
		withFetchTimeout(t, xdstest.Listener(t, patient, 10002, slotP), 0))
	mustRespond(t, n, dataplane.RouteType, "r1",
		xdstest.Routes(t, quick, xdstest.Route{Prefix: "/slot", Cluster: upstream, Slots: []string{slotQ}}, xdstest.Route{Prefix: "/", Cluster: upstream}),
		xdstest.Routes(t, patient, xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slotP}}))

	var addr string
	await(t, "listener quick serves after its fetch timeout", func() bool {
		addr = n.Listeners()[quick]
		return addr != ""
	})
	if got := n.Listeners()[patient]; got != "" {
		t.Errorf("listener patient (timeout 0) serves at %s without its filter config", got)
	}
	if r := get(t, addr, "/slot"); r.status != 500 || r.body != "" {
		t.Errorf("/slot: %d %q, want 500 and no body", r.status, r.body)
	}
	if r := get(t, addr, "/"); r.status != 200 {
		t.Errorf("/: %d, want 200 (no slot enabled)", r.status)
	}

	mustRespond(t, n, dataplane.ExtensionType, "e1", ecds(tagger(t, slotQ, "q"), tagger(t, slotP, "p"))...)
	if r := get(t, addr, "/slot"); r.status != 200 || r.header.Get("x-seen-chain") != "q" {
		t.Errorf("/slot after the config arrived: %d chain %q, want 200 q", r.status, r.header.Get("x-seen-chain"))
	}
	if r := get(t, listenerAddrOf(t, n, patient), "/"); r.status != 200 || r.header.Get("x-seen-chain") != "p" {
		t.Errorf("patient after the config arrived: %d chain %q, want 200 p", r.status, r.header.Get("x-seen-chain"))
	}
}

func listenerAddrOf(t *testing.T, n dataplane.Node, name string) string {
	t.Helper()
	var addr string
	await(t, "listener "+name, func() bool {
		addr = n.Listeners()[name]
		return addr != ""
	})
	return addr
}
