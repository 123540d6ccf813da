package fleet

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics/metricstest"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// clock is a test clock that moves only when told. Safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *clock) set(d time.Duration)     { c.ns.Store(int64(d)) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// at is a step taken when the clock reads epoch+offset.
type at struct {
	offset time.Duration
	do     step
}

func sentType(s Stream, typeURL, v, nonce string) step {
	return func(r Registry) { r.Sent(s, typeURL, v, nonce) }
}

func reqType(s Stream, typeURL string, q Request) step {
	return func(r Registry) { q.TypeURL = typeURL; r.Requested(s, n1, q) }
}

// run takes the steps in order, setting the clock before each.
func run(r Registry, c *clock, steps []at) {
	for _, s := range steps {
		c.set(s.offset)
		s.do(r)
	}
}

// TestAnswerTiming: a push (a new version of a type sent to a node) is timed
// from its first send to the node's first answer, once, into LastAnswer and
// the response histogram.
func TestAnswerTiming(t *testing.T) {
	const rds = resource.RouteType
	s := time.Second
	connect := []at{{0, open(sotw)}, {0, req(sotw, Request{})}, {0, assigned("v1", v1)}, {0, assigned("v2", v2)}}
	steps := func(more ...at) []at { return append(slices.Clone(connect), more...) }
	type want struct {
		Version         string
		NACK            bool
		SentAt, Latency time.Duration
	}
	tests := []struct {
		name     string
		steps    []at
		want     map[string]want   // LastAnswer by type URL; absent: none
		observed map[string]uint64 // histogram counts by "type/result"
	}{
		{
			name:     "ack",
			steps:    steps(at{1 * s, sent(sotw, "v1", "1")}, at{4 * s, req(sotw, Request{Version: "v1", Nonce: "1"})}),
			want:     map[string]want{ecds: {Version: "v1", SentAt: 1 * s, Latency: 3 * s}},
			observed: map[string]uint64{"ecds/ack": 1},
		},
		{
			name: "nack",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")},
				at{2500 * time.Millisecond, req(sotw, Request{Nonce: "1", NACK: true, Reason: "bad"})}),
			want:     map[string]want{ecds: {Version: "v1", NACK: true, SentAt: 1 * s, Latency: 1500 * time.Millisecond}},
			observed: map[string]uint64{"ecds/nack": 1},
		},
		{
			name: "a version sent again is timed from its first send",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{2 * s, sent(sotw, "v1", "2")},
				at{5 * s, req(sotw, Request{Version: "v1", Nonce: "2"})}),
			want:     map[string]want{ecds: {Version: "v1", SentAt: 1 * s, Latency: 4 * s}},
			observed: map[string]uint64{"ecds/ack": 1},
		},
		{
			name: "a push is timed once",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{2 * s, req(sotw, Request{Version: "v1", Nonce: "1"})},
				at{3 * s, sent(sotw, "v1", "2")}, at{7 * s, req(sotw, Request{Version: "v1", Nonce: "2"})}),
			want:     map[string]want{ecds: {Version: "v1", SentAt: 1 * s, Latency: 1 * s}},
			observed: map[string]uint64{"ecds/ack": 1},
		},
		{
			name: "a version sent again after another is a new push",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{2 * s, req(sotw, Request{Version: "v1", Nonce: "1"})},
				at{3 * s, sent(sotw, "v2", "2")}, at{4 * s, req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"})},
				at{5 * s, sent(sotw, "v1", "3")}, at{8 * s, req(sotw, Request{Version: "v1", Nonce: "3"})}),
			want:     map[string]want{ecds: {Version: "v1", SentAt: 5 * s, Latency: 3 * s}},
			observed: map[string]uint64{"ecds/ack": 2, "ecds/nack": 1},
		},
		{
			name: "an answer to a superseded push is not timed",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{2 * s, sent(sotw, "v2", "2")},
				at{3 * s, req(sotw, Request{Version: "v1", Nonce: "1"})},
				at{6 * s, req(sotw, Request{Version: "v2", Nonce: "2"})}),
			want:     map[string]want{ecds: {Version: "v2", SentAt: 2 * s, Latency: 4 * s}},
			observed: map[string]uint64{"ecds/ack": 1},
		},
		{
			name:  "an answer to an unknown nonce is not timed",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{2 * s, req(sotw, Request{Version: "v1", Nonce: "9"})}),
		},
		{
			name: "delta pushes are timed by nonce",
			steps: []at{{0, open(delta)}, {0, req(delta, Request{})}, {0, assigned("v1", v1)},
				{1 * s, sent(delta, "v1", "7")}, {1500 * time.Millisecond, req(delta, Request{Nonce: "7"})}},
			want:     map[string]want{ecds: {Version: "v1", SentAt: 1 * s, Latency: 500 * time.Millisecond}},
			observed: map[string]uint64{"ecds/ack": 1},
		},
		{
			name: "each type is timed on its own",
			steps: steps(at{1 * s, sent(sotw, "v1", "1")}, at{1 * s, sentType(sotw, rds, "r1", "2")},
				at{2 * s, reqType(sotw, rds, Request{Version: "r1", Nonce: "2"})},
				at{9 * s, req(sotw, Request{Version: "v1", Nonce: "1"})}),
			want: map[string]want{ecds: {Version: "v1", SentAt: 1 * s, Latency: 8 * s},
				rds: {Version: "r1", SentAt: 1 * s, Latency: 1 * s}},
			observed: map[string]uint64{"ecds/ack": 1, "rds/ack": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clock
			reg := prometheus.NewRegistry()
			r := New(Config{Now: c.now, Metrics: metrics.New(reg)})
			run(r, &c, tt.steps)
			n, ok := r.Node("n1")
			if !ok {
				t.Fatal("n1 not registered")
			}
			for _, ts := range n.Types {
				w, wanted := tt.want[ts.TypeURL]
				got := ts.LastAnswer
				switch {
				case !wanted && got != nil:
					t.Errorf("%s: LastAnswer = %+v, want none", ts.TypeURL, *got)
				case wanted && got == nil:
					t.Errorf("%s: no LastAnswer, want %+v", ts.TypeURL, w)
				case wanted && (got.Version != w.Version || got.NACK != w.NACK || got.Latency != w.Latency ||
					!got.SentAt.Equal(epoch.Add(w.SentAt)) || !got.At.Equal(got.SentAt.Add(w.Latency))):
					t.Errorf("%s: LastAnswer = %+v, want %+v", ts.TypeURL, *got, w)
				}
			}
			for _, typ := range []string{"ecds", "rds"} {
				for _, result := range []string{"ack", "nack"} {
					count, _ := metricstest.Histogram(t, reg, "wasmfleet_xds_response_seconds",
						map[string]string{"type": typ, "result": result})
					if want := tt.observed[typ+"/"+result]; count != want {
						t.Errorf("%s/%s observed %d times, want %d", typ, result, count, want)
					}
				}
			}
		})
	}
}

// churn connects and disconnects a node that is not n1: it makes the
// registry expire what is due, as the traffic of a real fleet does.
func churn(id int64) step {
	return func(r Registry) {
		s := Stream{ID: 1000 + id}
		r.StreamOpened(s)
		r.Requested(s, Identity{ID: fmt.Sprint("churn-", id)}, Request{TypeURL: ecds})
		r.StreamClosed(s)
	}
}

// recorded is how many ECDS versions the registry holds for node, -1 when
// it holds no record of the node at all.
func recorded(r Registry, node string) int {
	reg := r.(*registry)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	h := reg.assigned[node]
	if h == nil {
		return -1
	}
	return len(h.versions)
}

// TestRetention: what the registry remembers of a node's assignments is
// dropped when nothing can resolve to it any more, and what it still needs
// (the version a reconnecting node reports) is resolved either way.
func TestRetention(t *testing.T) {
	const retention = 10 * time.Minute
	acked := "n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-1").Short()
	ackedV2 := "n1: auth acked " + d("auth-1").Short() + ", transform acked " + d("transform-2").Short()
	firstAcks := []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(), "acked n1 transform " + d("transform-1").Short()}
	// ackedThenGone: n1 runs v1 and disconnects at time 0.
	ackedThenGone := []at{{0, open(sotw)}, {0, req(sotw, Request{})}, {0, assigned("v1", v1)}, {0, sent(sotw, "v1", "1")},
		{0, req(sotw, Request{Version: "v1", Nonce: "1"})}, {0, closed(sotw)}}
	steps := func(more ...at) []at { return append(slices.Clone(ackedThenGone), more...) }
	back := func(offset time.Duration) []at {
		return []at{{offset, open(sotw2)}, {offset, req(sotw2, Request{Version: "v1"})}}
	}
	tests := []struct {
		name         string
		steps        []at
		wantRecorded int // versions recorded for n1 at the end; -1 none
		wantEvents   []string
		wantSummary  string // of n1, "" when not connected
	}{
		{
			name:         "a node back within the retention resolves at once",
			steps:        steps(append([]at{{retention - time.Second, churn(1)}}, back(retention-time.Second)...)...),
			wantRecorded: 1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1"),
			wantSummary:  acked,
		},
		{
			name:         "a departed node is forgotten after the retention",
			steps:        steps(at{retention, churn(1)}),
			wantRecorded: -1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1"),
		},
		{
			name:         "a node back after the retention is resolved when assigned again",
			steps:        steps(append(append([]at{{retention, churn(1)}}, back(retention)...), at{retention, assigned("v1", v1)})...),
			wantRecorded: 1,
			wantEvents: append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1",
				"acked n1 auth "+d("auth-1").Short(), "acked n1 transform "+d("transform-1").Short()),
			wantSummary: acked,
		},
		{
			name:         "a node back after the retention is pending until assigned",
			steps:        steps(append([]at{{retention, churn(1)}}, back(retention)...)...),
			wantRecorded: -1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1"),
			wantSummary:  "n1: no filters",
		},
		{
			name:         "a connected node keeps its record past an old departure",
			steps:        steps(append(back(time.Minute), at{retention + time.Minute, churn(1)})...),
			wantRecorded: 1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1"),
			wantSummary:  acked,
		},
		{
			name: "a node that left again is kept for the retention from its last departure",
			steps: steps(append(back(time.Minute), at{2 * time.Minute, closed(sotw2)},
				at{retention + time.Minute, churn(1)})...),
			wantRecorded: 1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1", "node-disconnected n1"),
		},
		{
			name: "a node that left again is forgotten after the retention from its last departure",
			steps: steps(append(back(time.Minute), at{2 * time.Minute, closed(sotw2)},
				at{retention + 2*time.Minute, churn(1)})...),
			wantRecorded: -1,
			wantEvents:   append(slices.Clone(firstAcks), "node-disconnected n1", "node-connected n1", "node-disconnected n1"),
		},
		{
			name:         "an assignment to a node that is away expires",
			steps:        []at{{0, assigned("v1", v1)}, {retention, churn(1)}},
			wantRecorded: -1,
		},
		{
			name: "an ack forgets the versions assigned before it",
			steps: []at{{0, open(sotw)}, {0, req(sotw, Request{})}, {0, assigned("v1", v1)}, {0, assigned("v3", v3)},
				{0, assigned("v2", v2)}, {0, sent(sotw, "v2", "1")}, {0, req(sotw, Request{Version: "v2", Nonce: "1"})}},
			wantRecorded: 1,
			wantEvents: []string{"node-connected n1", "acked n1 auth " + d("auth-1").Short(),
				"acked n1 transform " + d("transform-2").Short()},
			wantSummary: ackedV2,
		},
		{
			name: "a nack forgets nothing: the node runs what it acked before",
			steps: []at{{0, open(sotw)}, {0, req(sotw, Request{})}, {0, assigned("v1", v1)}, {0, sent(sotw, "v1", "1")},
				{0, req(sotw, Request{Version: "v1", Nonce: "1"})}, {0, assigned("v2", v2)}, {0, sent(sotw, "v2", "2")},
				{0, req(sotw, Request{Version: "v1", Nonce: "2", NACK: true, Reason: "bad"})}},
			wantRecorded: 2,
			wantEvents:   append(slices.Clone(firstAcks), "nacked n1 transform "+d("transform-2").Short()+": bad"),
			wantSummary:  "n1: auth acked " + d("auth-1").Short() + ", transform NACKed " + d("transform-2").Short() + ": bad",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clock
			r := New(Config{Now: c.now, Retention: retention})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := r.Subscribe(ctx)
			run(r, &c, tt.steps)
			if got := collect(r, events, "n1"); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events:\n got  %q\n want %q", got, tt.wantEvents)
			}
			if got := recorded(r, "n1"); got != tt.wantRecorded {
				t.Errorf("versions recorded for n1 = %d, want %d", got, tt.wantRecorded)
			}
			var summary string
			if n, ok := r.Node("n1"); ok {
				summary = n.Summary()
			}
			if summary != tt.wantSummary {
				t.Errorf("n1 = %q, want %q", summary, tt.wantSummary)
			}
		})
	}
}

// collect returns every event published so far about node, as text.
func collect(r Registry, events <-chan Event, node string) []string {
	// A sentinel: its arrival means every earlier event was delivered.
	r.StreamOpened(Stream{ID: 99})
	r.Requested(Stream{ID: 99}, Identity{ID: "sentinel"}, Request{TypeURL: ecds})
	var got []string
	for e := range events {
		if e.Node == "sentinel" {
			break
		}
		if e.Node != node || e.Kind == Answered {
			continue // answers have their own test
		}
		s := fmt.Sprintf("%s %s", e.Kind, e.Node)
		if e.Kind == Acked || e.Kind == Nacked {
			s += fmt.Sprintf(" %s %s", e.Filter, e.Digest.Short())
		}
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		got = append(got, s)
	}
	return got
}

// TestChurnStaysBounded is the Kubernetes case: node ids come and go and
// never return. Many goroutines connect distinct nodes, push them two
// versions, ACK one and disconnect, while the clock runs; what the registry
// holds must not grow with the number of nodes ever seen.
func TestChurnStaysBounded(t *testing.T) {
	const (
		goroutines = 16
		perG       = 200
		tick       = time.Second // the clock's advance per node
		retention  = time.Minute
	)
	var c clock
	r := New(Config{Now: c.now, Retention: retention})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range r.Subscribe(ctx) {
		}
	}()
	va := types.Assignment{"auth": {Stable: d("auth-1")}}
	vb := types.Assignment{"auth": {Stable: d("auth-2")}}
	var wg sync.WaitGroup
	maxHeld := make([]int, goroutines) // by goroutine: the most it saw held
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				id := Identity{ID: fmt.Sprintf("pod-%02d-%03d", g, i)}
				s := Stream{ID: int64(g*perG + i + 1), Delta: i%2 == 1}
				r.StreamOpened(s)
				r.Requested(s, id, Request{TypeURL: ecds})
				r.Assigned(id.ID, "va", va)
				r.Sent(s, ecds, "va", "1")
				r.Requested(s, id, Request{TypeURL: ecds, Version: "va", Nonce: "1"})
				r.Assigned(id.ID, "vb", vb) // sent, never answered
				if n := recorded(r, id.ID); n > 2 {
					t.Errorf("%s: %d versions recorded while connected, want at most 2", id.ID, n)
				}
				r.StreamClosed(s)
				c.advance(tick)
				held, _ := sizes(r)
				maxHeld[g] = max(maxHeld[g], held)
			}
		}()
	}
	wg.Wait()
	// Nodes that left within the retention may still be held, plus those
	// whose departure raced with the clock.
	bound := int(retention/tick) + 2*goroutines
	held, queued := sizes(r)
	if peak := slices.Max(maxHeld); held > bound || queued > bound || peak > bound {
		t.Errorf("after %d nodes: %d nodes' assignments held (at most %d seen), %d departures queued; want at most %d",
			goroutines*perG, held, peak, queued, bound)
	}
	c.advance(retention)
	churn(1)(r)
	if held, queued := sizes(r); held != 0 || queued != 0 {
		t.Errorf("after the retention: %d nodes' assignments held, %d departures queued; want none", held, queued)
	}
	if n := len(r.Nodes()); n != 0 {
		t.Errorf("%d nodes connected, want none", n)
	}
}

// sizes reports how many nodes' assignments the registry holds and how long
// its departure queue is.
func sizes(r Registry) (held, queued int) {
	reg := r.(*registry)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return len(reg.assigned), len(reg.departed)
}

// BenchmarkChurn measures what the registry keeps of nodes that left: each
// iteration a node never seen before connects, is pushed two versions, ACKs
// the first and leaves, one second after the previous one on the registry's
// clock. It reports the heap still in use afterwards per node that left.
func BenchmarkChurn(b *testing.B) {
	var c clock
	r := New(Config{Now: c.now})
	a1 := types.Assignment{"auth": {Stable: d("auth-1")}, "transform": {Stable: d("transform-1")}}
	a2 := types.Assignment{"auth": {Stable: d("auth-2")}, "transform": {Stable: d("transform-1")}}
	heap0 := heapInuse()
	n := 0
	for b.Loop() {
		id := Identity{ID: fmt.Sprintf("pod-%08d", n)}
		s := Stream{ID: int64(n)}
		r.StreamOpened(s)
		r.Requested(s, id, Request{TypeURL: ecds})
		r.Assigned(id.ID, "v1", a1)
		r.Sent(s, ecds, "v1", "1")
		r.Requested(s, id, Request{TypeURL: ecds, Version: "v1", Nonce: "1"})
		r.Assigned(id.ID, "v2", a2)
		r.StreamClosed(s)
		c.advance(time.Second)
		n++
	}
	b.ReportMetric(float64(int64(heapInuse())-int64(heap0))/float64(n), "heap-B/node")
	runtime.KeepAlive(r)
}

// heapInuse is HeapInuse after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
