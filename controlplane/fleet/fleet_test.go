package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ecds = resource.ExtensionConfigType

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func d(s string) types.Digest { return types.DigestOf([]byte(s)) }

var (
	sotw  = Stream{ID: 1}
	sotw2 = Stream{ID: 2}
	delta = Stream{ID: 1, Delta: true}
	n1    = Identity{ID: "n1", Cluster: "edge", UserAgent: "envoy/1.33.2", Metadata: map[string]any{"zone": "a"}}
	v1    = types.Assignment{"auth": {Stable: d("auth-1")}, "transform": {Stable: d("transform-1")}}
	v2    = types.Assignment{"auth": {Stable: d("auth-1")}, "transform": {Stable: d("transform-2")}}
	// v3 differs from v1 only in configuration, which the assignment does not show.
	v3 = types.Assignment{"auth": {Stable: d("auth-1")}, "transform": {Stable: d("transform-1")}}
)

// step is one call into the registry, as the xDS server would make it.
type step func(r Registry)

func open(s Stream) step   { return func(r Registry) { r.StreamOpened(s) } }
func closed(s Stream) step { return func(r Registry) { r.StreamClosed(s) } }
func assigned(v string, a types.Assignment) step {
	return func(r Registry) { r.Assigned("n1", v, a) }
}
func sent(s Stream, v, nonce string) step {
	return func(r Registry) { r.Sent(s, ecds, v, nonce) }
}
func req(s Stream, q Request) step {
	return func(r Registry) { q.TypeURL = ecds; r.Requested(s, n1, q) }
}

// ackV1 connects n1 on sotw and has it accept ECDS version v1.
var ackV1 = []step{
	open(sotw), req(sotw, Request{}), assigned("v1", v1), sent(sotw, "v1", "1"),
	req(sotw, Request{Version: "v1", Nonce: "1"}),
}

func TestRegistry(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantEvents []string
		wantNodes  []string // Summary of each node
		wantNack   string   // LastNack reason for ECDS on n1
	}{
		{
			name:       "ack resolves to digests",
			steps:      ackV1,
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short()},
			wantNodes:  []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()},
		},
		{
			name: "nack blames the changed filter only",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "wasm: failed to load"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": wasm: failed to load"},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform NACKed " + d("transform-2").Short() + ": wasm: failed to load"},
			wantNack:  "wasm: failed to load",
		},
		{
			name: "a later ack clears the nack",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"}),
				assigned("v1", v1), sent(sotw, "v1", "3"), req(sotw, Request{Version: "v1", Nonce: "3"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": bad"},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()},
			wantNack:  "bad",
		},
		{
			// go-control-plane re-sends after a NACK; Envoy skips a config
			// equal to the one it rejected and ACKs it without loading it.
			name: "the ack of a re-sent rejected version is not a load",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"}),
				sent(sotw, "v2", "3"), req(sotw, Request{Version: "v2", Nonce: "3"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": bad"},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform NACKed " + d("transform-2").Short() + ": bad"},
			wantNack:  "bad",
		},
		{
			// The same Envoy on a new stream still remembers what it rejected
			// (it reports the version it last ACKed: here the skipped one).
			name: "a reconnect keeps the rejection",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"}),
				sent(sotw, "v2", "3"), req(sotw, Request{Version: "v2", Nonce: "3"}), closed(sotw),
				open(sotw2), req(sotw2, Request{Version: "v2"}), sent(sotw2, "v2", "4"), req(sotw2, Request{Version: "v2", Nonce: "4"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": bad", "node-disconnected n1", "node-connected n1"},
			wantNodes: []string{"n1: auth pending, transform pending"}, // it runs v1, but says v2
		},
		{
			// After loading another version Envoy builds the rejected one
			// again when it comes back.
			name: "a rejection is forgotten once another version loads",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"}),
				assigned("v1", v1), sent(sotw, "v1", "3"), req(sotw, Request{Version: "v1", Nonce: "3"}),
				assigned("v2", v2), sent(sotw, "v2", "4"), req(sotw, Request{Version: "v2", Nonce: "4"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": bad", "acked n1 transform " + d("transform-2").Short()},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-2").Short()},
			wantNack:  "bad",
		},
		{
			// A new stream with no version is a restarted Envoy: it has
			// forgotten what it rejected, so what it then ACKs it loaded.
			name: "a rejected version acked after a restart is a load",
			steps: append(slices.Clone(ackV1), assigned("v2", v2), sent(sotw, "v2", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"}), closed(sotw),
				open(sotw2), req(sotw2, Request{}), sent(sotw2, "v2", "4"), req(sotw2, Request{Version: "v2", Nonce: "4"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1 transform " + d("transform-2").Short() + ": bad", "node-disconnected n1", "node-connected n1",
				"acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-2").Short()},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-2").Short()},
		},
		{
			name: "nack of a change without a new module blames no filter",
			steps: append(slices.Clone(ackV1), assigned("v3", v3), sent(sotw, "v3", "2"),
				req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad config"})),
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short(),
				"nacked n1  : bad config"},
			wantNodes: []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()},
			wantNack:  "bad config",
		},
		{
			name: "delta ack is matched by nonce",
			steps: []step{open(delta), req(delta, Request{}), assigned("v1", v1), sent(delta, "v1", "7"),
				req(delta, Request{Nonce: "7"})},
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short()},
			wantNodes:  []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()},
		},
		{
			name: "an answer to an unknown nonce changes nothing",
			steps: []step{open(delta), req(delta, Request{}), assigned("v1", v1), sent(delta, "v1", "7"),
				req(delta, Request{Nonce: "6"})},
			wantEvents: []string{"node-connected n1"},
			wantNodes:  []string{"n1: auth pending, transform pending"},
		},
		{
			name:       "reconnect reports the running version without events",
			steps:      []step{assigned("v1", v1), open(sotw), req(sotw, Request{Version: "v1"})},
			wantEvents: []string{"node-connected n1"},
			wantNodes:  []string{"n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()},
		},
		{
			name: "node stays while one stream is open",
			steps: []step{open(sotw), req(sotw, Request{}), open(sotw2), req(sotw2, Request{}), closed(sotw),
				open(delta), closed(delta)},
			wantEvents: []string{"node-connected n1"},
			wantNodes:  []string{"n1: no filters"},
		},
		{
			name:       "node leaves with its last stream",
			steps:      []step{open(sotw), req(sotw, Request{}), open(sotw2), req(sotw2, Request{}), closed(sotw), closed(sotw2)},
			wantEvents: []string{"node-connected n1", "node-disconnected n1"},
		},
		{
			name:       "a stream that never sent a request binds no node",
			steps:      []step{open(sotw), closed(sotw)},
			wantEvents: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Now: func() time.Time { return epoch }})
			ctx, cancel := context.WithCancel(context.Background())
			events := r.Subscribe(ctx)
			for _, s := range tt.steps {
				s(r)
			}
			got := collect(r, events, n1.ID)
			cancel()
			if !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events:\n got  %q\n want %q", got, tt.wantEvents)
			}
			var nodes []string
			for _, n := range r.Nodes() {
				if n.ID != "sentinel" {
					nodes = append(nodes, n.Summary())
				}
			}
			if !slices.Equal(nodes, tt.wantNodes) {
				t.Errorf("nodes:\n got  %q\n want %q", nodes, tt.wantNodes)
			}
			n, ok := r.Node("n1")
			if ok != (len(tt.wantNodes) > 0) {
				t.Fatalf("Node(n1) ok = %v", ok)
			}
			if !ok {
				return
			}
			if n.Cluster != "edge" || n.UserAgent != "envoy/1.33.2" || n.Metadata["zone"] != "a" || !n.FirstSeen.Equal(epoch) {
				t.Errorf("identity = %+v", n)
			}
			var nack string
			for _, ts := range n.Types {
				if ts.TypeURL == ecds && ts.LastNack != nil {
					nack = ts.LastNack.Reason
				}
			}
			if nack != tt.wantNack {
				t.Errorf("ECDS LastNack = %q, want %q", nack, tt.wantNack)
			}
		})
	}
}

// TestSlowSubscriberDoesNotBlock: a subscriber that never reads must not stall
// the registry (a hang fails the test by timeout); its excess events are
// dropped and counted.
func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	const maxQueued, n = 4, 200
	r := New(Config{MaxQueued: maxQueued})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = r.Subscribe(ctx) // never read
	for i := range n {
		s := Stream{ID: int64(i)}
		r.StreamOpened(s)
		r.Requested(s, Identity{ID: fmt.Sprintf("n%03d", i)}, Request{TypeURL: ecds})
	}
	// The queue holds maxQueued, and the pump may hold one batch of at most
	// maxQueued in flight: everything else was dropped.
	if dropped := r.DroppedEvents(); dropped < n-2*maxQueued {
		t.Errorf("DroppedEvents = %d, want at least %d", dropped, n-2*maxQueued)
	}
	if got := len(r.Nodes()); got != n {
		t.Errorf("%d nodes registered, want %d: state must not depend on delivery", got, n)
	}
}

func TestSubscribeEndsWithContext(t *testing.T) {
	r := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	events := r.Subscribe(ctx)
	cancel()
	for range events {
	}
	// The registry forgot the subscriber: publishing still works.
	r.StreamOpened(sotw)
	r.Requested(sotw, n1, Request{TypeURL: ecds})
	if len(r.Nodes()) != 1 {
		t.Fatal("registry stopped working after a subscriber left")
	}
}

// TestHammer runs many simulated nodes at once, each connecting, being sent
// versions, acking or nacking, and leaving, while readers take status.
func TestHammer(t *testing.T) {
	r := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := r.Subscribe(ctx)
	const nodes, rounds = 32, 50
	counts := make(chan map[EventKind]int)
	go func() {
		c := map[EventKind]int{}
		for e := range events {
			c[e.Kind]++
			if c[NodeDisconnected] == nodes {
				break
			}
		}
		counts <- c
	}()
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := Identity{ID: fmt.Sprintf("node-%02d", i)}
			s := Stream{ID: int64(i), Delta: i%2 == 1}
			r.StreamOpened(s)
			r.Requested(s, id, Request{TypeURL: ecds})
			for round := range rounds {
				v := fmt.Sprintf("v%d", round)
				r.Assigned(id.ID, v, types.Assignment{"auth": {Stable: d(fmt.Sprint("auth-", round))}})
				nonce := fmt.Sprint(round)
				r.Sent(s, ecds, v, nonce)
				r.Requested(s, id, Request{TypeURL: ecds, Version: v, Nonce: nonce, NACK: round%7 == 3, Reason: "no"})
			}
			r.StreamClosed(s)
		}()
		go func() {
			defer wg.Done()
			for range rounds {
				for _, n := range r.Nodes() {
					_ = n.Summary()
				}
				r.Node(fmt.Sprintf("node-%02d", i))
			}
		}()
	}
	wg.Wait()
	c := <-counts
	if c[NodeConnected] != nodes || c[NodeDisconnected] != nodes {
		t.Errorf("connected %d, disconnected %d, want %d each", c[NodeConnected], c[NodeDisconnected], nodes)
	}
	wantNacks := nodes * 7 // rounds 3, 10, 17, 24, 31, 38, 45
	if c[Nacked] != wantNacks || c[Acked] != nodes*rounds-wantNacks {
		t.Errorf("acked %d, nacked %d, want %d and %d", c[Acked], c[Nacked], nodes*rounds-wantNacks, wantNacks)
	}
	if n := r.Nodes(); len(n) != 0 {
		t.Errorf("%d nodes left after all disconnected", len(n))
	}
}

func TestSummaryShowsSplit(t *testing.T) {
	st := NodeStatus{ID: "n1", Filters: []FilterStatus{{Filter: "auth",
		Acked: types.FilterVersions{Stable: d("a"), Candidate: d("b"), CandidateShare: 1000}}}}
	if s := st.Summary(); !strings.Contains(s, "+"+d("b").Short()+" for 1000/10000") {
		t.Errorf("Summary = %q", s)
	}
}

// BenchmarkRollout10kNodes measures the registry's share of one rollout step
// across 10,000 connected nodes: record the assignment, the response and the
// ACK of every node, with one subscriber reading the events and the
// response times going to the metrics.
func BenchmarkRollout10kNodes(b *testing.B) {
	const nodes = 10000
	r := New(Config{Metrics: metrics.New(prometheus.NewRegistry())})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range r.Subscribe(ctx) {
		}
	}()
	ids := make([]Identity, nodes)
	for i := range ids {
		ids[i] = Identity{ID: fmt.Sprintf("node-%05d", i)}
		r.StreamOpened(Stream{ID: int64(i)})
		r.Requested(Stream{ID: int64(i)}, ids[i], Request{TypeURL: ecds})
	}
	b.ReportAllocs()
	for round := 0; b.Loop(); round++ {
		v := fmt.Sprint("v", round)
		a := types.Assignment{"auth": {Stable: d(v)}, "transform": {Stable: d("transform")}}
		for i, id := range ids {
			s := Stream{ID: int64(i)}
			r.Assigned(id.ID, v, a)
			r.Sent(s, ecds, v, v)
			r.Requested(s, id, Request{TypeURL: ecds, Version: v, Nonce: v})
		}
	}
}
