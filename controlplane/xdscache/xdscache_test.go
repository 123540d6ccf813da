package xdscache

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extensionservice "github.com/envoyproxy/go-control-plane/envoy/service/extension/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/config"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	ecds     = resource.ExtensionConfigType
	slotA    = "slot.a"
	slotB    = "slot.b"
	testWait = 10 * time.Second
)

// extension is an ECDS resource carrying payload bytes, standing in for an
// inline module.
func extension(t testing.TB, name string, payload []byte) *core.TypedExtensionConfig {
	t.Helper()
	a, err := anypb.New(wrapperspb.Bytes(payload))
	if err != nil {
		t.Fatal(err)
	}
	return &core.TypedExtensionConfig{Name: name, TypedConfig: a}
}

// snap is a snapshot with two ECDS resources whose payloads carry tag, and
// with the other types when full is set.
func snap(t testing.TB, version, tag string, full bool) *cache.Snapshot {
	t.Helper()
	rs := map[resource.Type][]types.Resource{ecds: {
		extension(t, slotA, bytes.Repeat([]byte(tag+"a"), 256)),
		extension(t, slotB, bytes.Repeat([]byte(tag+"b"), 256)),
	}}
	if full {
		rs[resource.ClusterType] = []types.Resource{&cluster.Cluster{Name: "c-" + tag}}
		rs[resource.ListenerType] = []types.Resource{&listener.Listener{Name: "l-" + tag}}
		rs[resource.RouteType] = []types.Resource{&route.RouteConfiguration{Name: "r"}}
	}
	s, err := cache.NewSnapshot(version, rs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder is the server's callbacks: every request it received, so a test
// can see that an ACK was handled.
type recorder struct {
	mu   sync.Mutex
	reqs []*discovery.DiscoveryRequest
}

func (r *recorder) OnStreamOpen(context.Context, int64, string) error { return nil }
func (r *recorder) OnStreamClosed(int64, *core.Node)                  {}
func (r *recorder) OnStreamRequest(_ int64, req *discovery.DiscoveryRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return nil
}
func (r *recorder) OnStreamResponse(context.Context, int64, *discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {
}
func (r *recorder) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error         { return nil }
func (r *recorder) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
func (r *recorder) OnDeltaStreamOpen(context.Context, int64, string) error                    { return nil }
func (r *recorder) OnDeltaStreamClosed(int64, *core.Node)                                     {}
func (r *recorder) OnStreamDeltaRequest(int64, *discovery.DeltaDiscoveryRequest) error        { return nil }
func (r *recorder) OnStreamDeltaResponse(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
}

// acked reports whether node answered typeURL's response nonce with version.
func (r *recorder) acked(node, typeURL, version, nonce string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.reqs {
		if q.GetNode().GetId() == node && q.GetTypeUrl() == typeURL && q.GetVersionInfo() == version && q.GetResponseNonce() == nonce {
			return true
		}
	}
	return false
}

// harness is go-control-plane's gRPC server on a loopback port serving a
// Cache, and a connection to it.
type harness struct {
	cache *Cache
	calls *recorder
	conn  *grpc.ClientConn
}

func start(t *testing.T, cfg Config, opts ...config.XDSOption) *harness {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{cache: c, calls: &recorder{}}
	g := grpc.NewServer()
	xds := serverv3.NewServer(ctx, c, h.calls, opts...)
	discovery.RegisterAggregatedDiscoveryServiceServer(g, xds)
	extensionservice.RegisterExtensionConfigDiscoveryServiceServer(g, xds)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); g.Serve(lis) }()
	h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.conn.Close()
		cancel()
		g.Stop()
		<-served
	})
	return h
}

// client is one node's state-of-the-world stream.
type client struct {
	t    *testing.T
	node *core.Node
	s    grpc.BidiStreamingClient[discovery.DiscoveryRequest, discovery.DiscoveryResponse]
	stop context.CancelFunc
}

func (h *harness) ads(t *testing.T, node string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := discovery.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return &client{t: t, node: &core.Node{Id: node}, s: s, stop: cancel}
}

func (c *client) send(typeURL, version, nonce string, names []string, nack string) {
	c.t.Helper()
	req := &discovery.DiscoveryRequest{Node: c.node, TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: names}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nack}
	}
	if err := c.s.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next response, failing the test after testWait.
func (c *client) recv() *discovery.DiscoveryResponse {
	c.t.Helper()
	r, ok := recvWithin(c.t, c.s.Recv, c.stop, testWait)
	if !ok {
		c.t.Fatal("no response")
	}
	return r
}

// recvWithin returns what recv gets next, or ok false if nothing comes
// within wait; the stream is then stopped (stop) so that recv returns.
func recvWithin[R any](t *testing.T, recv func() (R, error), stop func(), wait time.Duration) (r R, ok bool) {
	t.Helper()
	type got struct {
		r   R
		err error
	}
	ch := make(chan got, 1)
	go func() {
		r, err := recv()
		ch <- got{r, err}
	}()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatal(g.err)
		}
		return g.r, true
	case <-time.After(wait):
		stop()
		<-ch
		return r, false
	}
}

// eventually polls cond until it holds or testWait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkResources fails unless resp carries exactly the snapshot's
// resources of its type, each decoding to an equal message.
func checkResources(t *testing.T, resp *discovery.DiscoveryResponse, s *cache.Snapshot) {
	t.Helper()
	want := s.GetResources(resp.GetTypeUrl())
	if len(resp.GetResources()) != len(want) {
		t.Fatalf("%d resources, want %d", len(resp.GetResources()), len(want))
	}
	for _, a := range resp.GetResources() {
		if a.GetTypeUrl() != resp.GetTypeUrl() {
			t.Errorf("resource of type %q in a %q response", a.GetTypeUrl(), resp.GetTypeUrl())
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[cache.GetResourceName(m)]; !ok || !proto.Equal(m, w) {
			t.Errorf("resource %q differs from the snapshot's", cache.GetResourceName(m))
		}
	}
}

// TestProtocol: versions, nonces, ACK and NACK over a real ADS stream and
// over the ECDS service, as go-control-plane's snapshot cache serves them.
func TestProtocol(t *testing.T) {
	tests := []struct {
		name string
		open func(h *harness, t *testing.T) *client
	}{
		{name: "ads", open: func(h *harness, t *testing.T) *client { return h.ads(t, "n1") }},
		{name: "ecds service", open: func(h *harness, t *testing.T) *client {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			s, err := extensionservice.NewExtensionConfigDiscoveryServiceClient(h.conn).StreamExtensionConfigs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return &client{t: t, node: &core.Node{Id: "n1"}, s: s, stop: cancel}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, Config{ADS: true, LargeResponseBytes: 1, PushWindow: 1})
			s1, s2 := snap(t, "v1", "1", false), snap(t, "v2", "2", false)
			if err := h.cache.SetSnapshot(context.Background(), "n1", s1); err != nil {
				t.Fatal(err)
			}
			c := tt.open(h, t)
			names := []string{slotA, slotB}
			c.send(ecds, "", "", names, "")
			r1 := c.recv()
			if r1.GetVersionInfo() != "v1" || r1.GetNonce() == "" || r1.GetTypeUrl() != ecds {
				t.Fatalf("first response: version %q nonce %q type %q", r1.GetVersionInfo(), r1.GetNonce(), r1.GetTypeUrl())
			}
			checkResources(t, r1, s1)
			c.send(ecds, "v1", r1.GetNonce(), names, "")
			eventually(t, "the ACK is handled and its slot freed", func() bool {
				inFlight, _ := h.cache.Window()
				return h.calls.acked("n1", ecds, "v1", r1.GetNonce()) && inFlight == 0
			})

			if err := h.cache.SetSnapshot(context.Background(), "n1", s2); err != nil {
				t.Fatal(err)
			}
			r2 := c.recv()
			if r2.GetVersionInfo() != "v2" || r2.GetNonce() == r1.GetNonce() {
				t.Fatalf("second response: version %q nonce %q (first nonce %q)", r2.GetVersionInfo(), r2.GetNonce(), r1.GetNonce())
			}
			checkResources(t, r2, s2)
			// A NACK keeps the old version; go-control-plane sends the
			// snapshot again, with a new nonce.
			c.send(ecds, "v1", r2.GetNonce(), names, "wasm: failed to load")
			r3 := c.recv()
			if r3.GetVersionInfo() != "v2" || r3.GetNonce() == r2.GetNonce() {
				t.Fatalf("after a NACK: version %q nonce %q (NACKed nonce %q)", r3.GetVersionInfo(), r3.GetNonce(), r2.GetNonce())
			}
			checkResources(t, r3, s2)
			c.send(ecds, "v2", r3.GetNonce(), names, "")
			eventually(t, "the ACK of v2 is handled and the watch waits", func() bool {
				inFlight, queued := h.cache.Window()
				h.cache.mu.Lock()
				open := len(h.cache.nodes["n1"].watches)
				h.cache.mu.Unlock()
				return h.calls.acked("n1", ecds, "v2", r3.GetNonce()) && inFlight == 0 && queued == 0 && open == 1
			})
		})
	}
}

// TestSharedEncoding: nodes set to the same snapshot get the same encoded
// bytes, not copies; a node on another snapshot gets its own; and a
// response carries only what its request names.
func TestSharedEncoding(t *testing.T) {
	c, err := New(Config{ADS: false})
	if err != nil {
		t.Fatal(err)
	}
	shared, other := snap(t, "v1", "1", false), snap(t, "v1", "1", false)
	for node, s := range map[string]*cache.Snapshot{"a": shared, "b": shared, "c": other} {
		if err := c.SetSnapshot(context.Background(), node, s); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]*discovery.DiscoveryResponse{}
	for _, node := range []string{"a", "b", "c"} {
		out := make(chan cache.Response, 1)
		req := &discovery.DiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: ecds, ResourceNames: []string{slotA}}
		cancel, err := c.CreateWatch(req, stream.NewSotwSubscription(req.GetResourceNames(), true), out)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if got[node], err = (<-out).GetDiscoveryResponse(); err != nil {
			t.Fatal(err)
		}
		if n := len(got[node].GetResources()); n != 1 {
			t.Fatalf("%s: %d resources for a request naming one", node, n)
		}
	}
	value := func(node string) []byte { return got[node].GetResources()[0].GetValue() }
	if &value("a")[0] != &value("b")[0] {
		t.Error("nodes on one snapshot got separate encodings")
	}
	if &value("a")[0] == &value("c")[0] || !bytes.Equal(value("a"), value("c")) {
		t.Error("a node on another snapshot of equal content should get equal bytes of its own")
	}
	if got["a"] == got["b"] {
		t.Error("two responses share one DiscoveryResponse: the server writes each one's nonce into it")
	}
}

// TestPushWindow: with one slot, a second node's large response waits
// until the first node answers, while the second node's small responses
// and its ACKs go through; the waiting response carries the node's latest
// snapshot.
func TestPushWindow(t *testing.T) {
	h := start(t, Config{ADS: true, LargeResponseBytes: 256, PushWindow: 1})
	ctx := context.Background()
	for _, node := range []string{"a", "b"} {
		if err := h.cache.SetSnapshot(ctx, node, snap(t, "v1", "1", true)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := h.ads(t, "a"), h.ads(t, "b")
	names := []string{slotA, slotB}
	a.send(ecds, "", "", names, "")
	ra := a.recv()
	b.send(resource.ClusterType, "", "", nil, "")
	rc := b.recv()
	b.send(ecds, "", "", names, "")
	eventually(t, "b's filter configs wait for the slot", func() bool {
		inFlight, queued := h.cache.Window()
		return inFlight == 1 && queued == 1
	})
	// b's small responses and its answers are not held up.
	b.send(resource.ClusterType, rc.GetVersionInfo(), rc.GetNonce(), nil, "")
	eventually(t, "b's cluster ACK is handled", func() bool { return h.calls.acked("b", resource.ClusterType, "v1", rc.GetNonce()) })
	s2 := snap(t, "v2", "2", true)
	if err := h.cache.SetSnapshot(ctx, "b", s2); err != nil {
		t.Fatal(err)
	}
	if r := b.recv(); r.GetTypeUrl() != resource.ClusterType || r.GetVersionInfo() != "v2" {
		t.Fatalf("b got %s %s, want clusters v2 while its filter configs wait", r.GetTypeUrl(), r.GetVersionInfo())
	}
	a.send(ecds, ra.GetVersionInfo(), ra.GetNonce(), names, "")
	rb := b.recv()
	if rb.GetTypeUrl() != ecds || rb.GetVersionInfo() != "v2" {
		t.Fatalf("b got %s %s once a answered, want filter configs v2 (its latest)", rb.GetTypeUrl(), rb.GetVersionInfo())
	}
	checkResources(t, rb, s2)
	if inFlight, queued := h.cache.Window(); inFlight != 1 || queued != 0 {
		t.Errorf("window: %d in flight, %d queued; want b's response in flight alone", inFlight, queued)
	}
}

// TestSlotRelease: a slot comes back when its node's stream ends, and when
// its node does not answer within the hold timeout.
func TestSlotRelease(t *testing.T) {
	tests := []struct {
		name string
		hold time.Duration
		end  func(a *client)
	}{
		{name: "stream ends", hold: time.Hour, end: func(a *client) { a.stop() }},
		{name: "no answer", hold: 50 * time.Millisecond, end: func(*client) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, Config{ADS: true, LargeResponseBytes: 256, PushWindow: 1, HoldTimeout: tt.hold})
			for _, node := range []string{"a", "b"} {
				if err := h.cache.SetSnapshot(context.Background(), node, snap(t, "v1", "1", false)); err != nil {
					t.Fatal(err)
				}
			}
			a, b := h.ads(t, "a"), h.ads(t, "b")
			names := []string{slotA, slotB}
			a.send(ecds, "", "", names, "")
			a.recv()
			b.send(ecds, "", "", names, "")
			eventually(t, "b waits", func() bool { _, q := h.cache.Window(); return q == 1 })
			tt.end(a)
			if r := b.recv(); r.GetVersionInfo() != "v1" {
				t.Fatalf("b got version %q", r.GetVersionInfo())
			}
		})
	}
}

// TestADSOrder: one snapshot changing every type reaches a node in
// go-control-plane's type order (clusters, listeners, routes, filter
// configs), and stays in that order when the filter configs wait for the
// window. The order is observable only with go-control-plane's ordered ADS
// server: its default server reads each type's responses from a channel of
// its own and picks among ready ones at random.
func TestADSOrder(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "window free", true: "window busy"}[busy], func(t *testing.T) {
			h := start(t, Config{ADS: true, LargeResponseBytes: 256, PushWindow: 1}, sotw.WithOrderedADS())
			ctx := context.Background()
			for _, node := range []string{"n", "other"} {
				if err := h.cache.SetSnapshot(ctx, node, snap(t, "v1", "1", true)); err != nil {
					t.Fatal(err)
				}
			}
			n := h.ads(t, "n")
			order := []string{resource.ClusterType, resource.ListenerType, resource.RouteType, ecds}
			names := map[string][]string{resource.RouteType: {"r"}, ecds: {slotA, slotB}}
			// Subscribe, take version v1 of everything, and answer it.
			for _, typ := range order {
				n.send(typ, "", "", names[typ], "")
				r := n.recv()
				n.send(typ, r.GetVersionInfo(), r.GetNonce(), names[typ], "")
			}
			eventually(t, "n's answers are handled", func() bool { inFlight, _ := h.cache.Window(); return inFlight == 0 })
			var other *client
			var ro *discovery.DiscoveryResponse
			if busy {
				other = h.ads(t, "other")
				other.send(ecds, "", "", names[ecds], "")
				ro = other.recv()
			}
			if err := h.cache.SetSnapshot(ctx, "n", snap(t, "v2", "2", true)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for range order {
				if busy && len(got) == len(order)-1 {
					if _, queued := h.cache.Window(); queued != 1 {
						t.Errorf("%d responses wait, want n's filter configs", queued)
					}
					other.send(ecds, ro.GetVersionInfo(), ro.GetNonce(), names[ecds], "")
				}
				r := n.recv()
				if r.GetVersionInfo() != "v2" {
					t.Fatalf("%s version %q, want v2", r.GetTypeUrl(), r.GetVersionInfo())
				}
				got = append(got, r.GetTypeUrl())
			}
			for i := range order {
				if got[i] != order[i] {
					t.Fatalf("order %v, want %v", got, order)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "default", cfg: Default(), ok: true},
		{name: "no window", cfg: Config{PushWindow: -1, HoldTimeout: time.Second}},
		{name: "negative threshold", cfg: Config{PushWindow: 1, LargeResponseBytes: -1, HoldTimeout: time.Second}},
		{name: "no hold", cfg: Config{PushWindow: 1, HoldTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Errorf("Validate() = %v, want ok=%v or ErrConfig", err, tt.ok)
			}
		})
	}
}

// names lists the resources of a response by name.
func names(t *testing.T, r *discovery.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range r.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cache.GetResourceName(m))
	}
	slices.Sort(out)
	return out
}

// TestPartialResponses: a state-of-the-world filter config response
// carries only the resources whose encoding the node does not have yet,
// under the snapshot's version; after a NACK it carries them all again;
// listeners (and clusters) always go complete.
func TestPartialResponses(t *testing.T) {
	h := start(t, Config{ADS: true})
	ctx := context.Background()
	set := func(s *cache.Snapshot) {
		t.Helper()
		if err := h.cache.SetSnapshot(ctx, "n", s); err != nil {
			t.Fatal(err)
		}
	}
	// withB returns base with slot b's payload replaced.
	withB := func(version, tag, bTag string) *cache.Snapshot {
		s, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{
			ecds: {
				extension(t, slotA, bytes.Repeat([]byte(tag+"a"), 256)),
				extension(t, slotB, bytes.Repeat([]byte(bTag+"b"), 256)),
			},
			resource.ListenerType: {&listener.Listener{Name: "l1"}, &listener.Listener{Name: "l2-" + bTag}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	set(withB("v1", "1", "1"))
	n := h.ads(t, "n")
	slots := []string{slotA, slotB}
	n.send(ecds, "", "", slots, "")
	r := n.recv()
	if got := names(t, r); !slices.Equal(got, slots) {
		t.Fatalf("first response carries %v, want %v", got, slots)
	}
	n.send(ecds, r.GetVersionInfo(), r.GetNonce(), slots, "")
	n.send(resource.ListenerType, "", "", nil, "")
	rl := n.recv()
	n.send(resource.ListenerType, rl.GetVersionInfo(), rl.GetNonce(), nil, "")
	eventually(t, "n's answers are handled", func() bool {
		return h.calls.acked("n", ecds, "v1", r.GetNonce()) && h.calls.acked("n", resource.ListenerType, "v1", rl.GetNonce())
	})

	s2 := withB("v2", "1", "2")
	set(s2)
	var r2, rl2 *discovery.DiscoveryResponse
	for range 2 {
		if got := n.recv(); got.GetTypeUrl() == ecds {
			r2 = got
		} else {
			rl2 = got
		}
	}
	if r2.GetVersionInfo() != "v2" || !slices.Equal(names(t, r2), []string{slotB}) {
		t.Fatalf("after slot b changed: version %q with %v, want v2 with [%s]", r2.GetVersionInfo(), names(t, r2), slotB)
	}
	if got := names(t, rl2); len(got) != 2 {
		t.Errorf("listeners %v, want both: a listener response is always complete", got)
	}
	n.send(resource.ListenerType, rl2.GetVersionInfo(), rl2.GetNonce(), nil, "")
	// The node rejects slot b's new config and keeps its old one: the
	// next response is complete.
	n.send(ecds, "v1", r2.GetNonce(), slots, "wasm: failed to load")
	r3 := n.recv()
	if r3.GetVersionInfo() != "v2" || !slices.Equal(names(t, r3), slots) {
		t.Fatalf("after a NACK: version %q with %v, want v2 with %v", r3.GetVersionInfo(), names(t, r3), slots)
	}
	checkResources(t, r3, s2)
	n.send(ecds, "v2", r3.GetNonce(), slots, "")
	// A version whose filter configs equal what the node has: an empty
	// response, so the node still acknowledges the version.
	set(withB("v3", "1", "2"))
	r4 := n.recv()
	if r4.GetTypeUrl() == resource.ListenerType {
		r4 = n.recv()
	}
	if r4.GetTypeUrl() != ecds || r4.GetVersionInfo() != "v3" || len(r4.GetResources()) != 0 {
		t.Fatalf("got %s %s with %d resources, want filter configs v3 with none", r4.GetTypeUrl(), r4.GetVersionInfo(), len(r4.GetResources()))
	}
}
