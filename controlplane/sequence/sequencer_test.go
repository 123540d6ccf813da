package sequence

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// want is a chain link for tests: filter f at version v, with candidate c
// for share of the requests when c is set. Keys are "f@v".
func want(f, v, c string, share types.BasisPoints) Want {
	w := Want{Filter: f, Stable: types.Digest(v), StableKey: f + "@" + v}
	if c != "" {
		w.Candidate, w.CandidateKey, w.Share = types.Digest(c), f+"@"+c, share
	}
	return w
}

func chain(ws ...Want) []Want { return ws }

// envoy models what a node runs, as FACTS.md ("xDS ordering and ECDS")
// describes Envoy: each type applies on its own when it arrives; ECDS
// configs apply in order, a config equal to the last one received is
// skipped, the first one that fails stops the rest and NACKs the response.
//
// A listener serves only once its filter configs have arrived (it warms
// until then), so nothing is checked before the first slots arrive.
type envoy struct {
	serving  bool
	routes   []types.Link
	running  []string // key per slot
	received []string
	fails    func(key string) bool
}

func (e *envoy) applySlots(keys []string) (nack bool) {
	e.serving = true
	for len(e.running) < len(keys) {
		e.running, e.received = append(e.running, ""), append(e.received, "")
	}
	for i, k := range keys {
		if k == e.received[i] {
			continue
		}
		e.received[i] = k
		if e.fails(k) {
			return true
		}
		e.running[i] = k
	}
	return false
}

// violation describes a moment when a route runs something it must not: a
// slot without a loaded config of the filter the route expects there, or a
// chain that is not one of the allowed orders.
func (e *envoy) violation(allowed [][]string) string {
	if !e.serving {
		return ""
	}
	var names []string
	for _, l := range e.routes {
		slots := []int{2 * l.Pair}
		if l.Split() {
			slots = append(slots, 2*l.Pair+1)
		}
		for _, s := range slots {
			if s >= len(e.running) || !strings.HasPrefix(e.running[s], l.Filter+"@") {
				got := "nothing"
				if s < len(e.running) && e.running[s] != "" {
					got = e.running[s]
				}
				return fmt.Sprintf("route enables slot %d for %s, which runs %s", s, l.Filter, got)
			}
		}
		names = append(names, l.Filter)
	}
	if len(e.routes) > 0 && !slices.ContainsFunc(allowed, func(a []string) bool { return slices.Equal(a, names) }) {
		return fmt.Sprintf("routes run %v, not a configured order", names)
	}
	return ""
}

func names(ws []Want) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Filter
	}
	return out
}

// world drives one node through a sequence of target chains with messages
// delivered and answered in a random order: the control plane sets
// snapshots whenever it likes; the node takes the latest routes or slots at
// random moments, in either order when both are new; its answers reach the sequencer later. After every change the
// node applies, the invariant is checked.
type world struct {
	t       *testing.T
	rng     *rand.Rand
	seq     *Sequencer
	node    *envoy
	pairs   int
	allowed [][]string
	// latest is the last step set; gotRoutes/gotSlots say whether the node
	// has taken its routes and slots.
	latest              Step
	hasLatest           bool
	gotRoutes, gotSlots bool
	answers             []func()
	violations          []string
	// unsequenced sends every target at once, as wasmfleet did before
	// this stage: the check that the invariant can fail.
	unsequenced bool
}

func newWorld(t *testing.T, seed uint64, pairs int, fails func(string) bool) *world {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, 1)), seq: New(), node: &envoy{fails: fails}, pairs: pairs}
	w.seq.Connected("n")
	w.seq.Reported("n", Listeners, false, nil, nil, true)
	return w
}

// converge runs until the node runs target (settled: nothing in flight and
// the sequencer sends nothing new), or fails after a bound of rounds.
func (w *world) converge(target []Want) {
	w.t.Helper()
	w.allowed = append(w.allowed, names(target))
	for round := 0; round < 400; round++ {
		switch r := w.rng.IntN(4); {
		case r == 0 || len(w.answers) == 0 && w.gotRoutes && w.gotSlots:
			w.plan(target)
		case r == 1 && len(w.answers) > 0:
			a := w.answers[0]
			w.answers = w.answers[1:]
			a()
		default:
			w.deliver()
		}
		if w.settled(target) {
			return
		}
	}
	w.t.Fatalf("did not converge on %v: routes %v running %v", names(target), w.node.routes, w.node.running)
}

func (w *world) plan(target []Want) {
	step, ok, err := w.seq.Next("n", w.pairs, target)
	if err != nil || !ok {
		w.t.Fatalf("Next: ok %v err %v", ok, err)
	}
	if w.unsequenced {
		step = canonicalStep(w.pairs, target)
	}
	if w.hasLatest && slices.Equal(step.keys, w.latest.keys) && slices.Equal(step.Layout.Chain, w.latest.Layout.Chain) {
		return // the same snapshot: the cache sends nothing
	}
	w.seq.Sent("n", step)
	if !w.hasLatest || !slices.Equal(step.Layout.Chain, w.latest.Layout.Chain) {
		w.gotRoutes = false
	}
	if !w.hasLatest || !slices.Equal(step.keys, w.latest.keys) {
		w.gotSlots = false
	}
	w.latest, w.hasLatest = step, true
}

// deliver hands the node the newest routes or the newest slots, either
// first when both are new. go-control-plane's ADS cache sends RDS before
// ECDS when both watches are open (snapshotCache.respondSOTWWatches sorts
// them by type), but a watch opens only when the node answered the previous
// response of its type, so a type still being applied goes out later.
func (w *world) deliver() {
	step := w.latest
	routesFirst := w.rng.IntN(2) == 0
	switch {
	case !w.hasLatest:
		return
	case !w.gotRoutes && (routesFirst || w.gotSlots):
		w.gotRoutes = true
		w.node.routes = step.Layout.Chain
		w.answers = append(w.answers, func() { w.seq.AnsweredRoutes("n", step.Layout.Chain, false) })
	case !w.gotSlots:
		w.gotSlots = true
		nack := w.node.applySlots(step.keys)
		w.answers = append(w.answers, func() { w.seq.AnsweredSlots("n", step.keys, nack) })
	default:
		return
	}
	if v := w.node.violation(w.allowed); v != "" {
		w.violations = append(w.violations, v)
	}
}

func (w *world) settled(target []Want) bool {
	if !w.gotRoutes || !w.gotSlots || len(w.answers) > 0 {
		return false
	}
	step, ok, err := w.seq.Next("n", w.pairs, target)
	if w.unsequenced {
		step = canonicalStep(w.pairs, target)
	}
	if err != nil || !ok || !slices.Equal(step.keys, w.latest.keys) || !slices.Equal(step.Layout.Chain, w.latest.Layout.Chain) {
		return false
	}
	var got []string
	for _, l := range w.node.routes {
		got = append(got, l.Filter)
	}
	return slices.Equal(got, names(target))
}

func noFailures(string) bool { return false }

// canonicalStep is the whole target at once, with its keys.
func canonicalStep(pairs int, target []Want) Step {
	l := Canonical(pairs, target)
	keys := make([]string, len(l.Slots))
	for i, w := range target {
		keys[2*i], keys[2*i+1] = w.keys()
	}
	return Step{Layout: l, keys: keys}
}

// TestMakeBeforeBreak drives one node through every kind of change, with
// deliveries and answers in random orders, and checks that no route ever
// enables a slot that does not run the filter it expects, and that every
// route runs one of the configured orders.
func TestMakeBeforeBreak(t *testing.T) {
	a1, a2 := want("auth", "v1", "", 0), want("auth", "v2", "", 0)
	l1, t1, s1 := want("logging", "v1", "", 0), want("transform", "v1", "", 0), want("stamp", "v1", "", 0)
	// unsafe marks the changes that sending the target whole (RDS and ECDS
	// together, RDS first) gets wrong in some order of delivery: a route
	// enables a slot that holds nothing yet, or another filter.
	tests := []struct {
		name   string
		steps  [][]Want
		fails  func(string) bool
		unsafe bool
	}{
		{name: "first deployment", steps: [][]Want{chain(a1)}},
		{name: "new version in place", steps: [][]Want{chain(a1, l1), chain(a2, l1)}},
		{name: "request split start, step, full", steps: [][]Want{
			chain(a1, l1), chain(want("auth", "v1", "v2", 1000), l1), chain(want("auth", "v1", "v2", 5000), l1),
			chain(want("auth", "v1", "v2", 10000), l1), chain(a2, l1)}, unsafe: true},
		{name: "split candidate rejected, then rolled back", steps: [][]Want{
			chain(a1, l1), chain(want("auth", "v1", "v2", 3000), l1), chain(a1, l1)},
			fails: func(k string) bool { return k == "auth@v2" }, unsafe: true},
		{name: "new version rejected in place, then rolled back", steps: [][]Want{chain(a1, l1), chain(a2, l1), chain(a1, l1)},
			fails: func(k string) bool { return k == "auth@v2" }},
		{name: "reorder of three", steps: [][]Want{chain(a1, l1, t1), chain(a1, t1, l1), chain(t1, l1, a1), chain(a1, l1, t1)}, unsafe: true},
		{name: "filter added and removed", steps: [][]Want{chain(a1, t1), chain(a1, l1, t1), chain(a1, t1), chain(t1)}, unsafe: true},
		{name: "a filter that another took the place of", steps: [][]Want{chain(a1, l1, t1), chain(a1, s1, t1)}, unsafe: true},
	}
	for _, tt := range tests {
		unsequencedViolations := 0
		for seed := uint64(1); seed <= 40; seed++ {
			t.Run(fmt.Sprintf("%s/seed-%d", tt.name, seed), func(t *testing.T) {
				fails := tt.fails
				if fails == nil {
					fails = noFailures
				}
				w := newWorld(t, seed, 8, fails)
				w.run(tt.steps, fails)
				if len(w.violations) > 0 {
					t.Fatalf("%d violations, first: %s", len(w.violations), w.violations[0])
				}
				u := newWorld(t, seed, 8, fails)
				u.unsequenced = true
				u.run(tt.steps, fails)
				unsequencedViolations += len(u.violations)
			})
		}
		if tt.unsafe && unsequencedViolations == 0 {
			t.Errorf("%s: sending targets whole never broke the invariant: the test cannot fail", tt.name)
		}
		t.Logf("%s: %d violations without sequencing over 40 orders of delivery", tt.name, unsequencedViolations)
	}
}

// run converges on each target in turn.
func (w *world) run(steps [][]Want, fails func(string) bool) {
	for _, target := range steps {
		if slices.ContainsFunc(target, func(x Want) bool { return fails(x.StableKey) }) {
			// A rejected stable version is not waited for: the controller
			// rolls back; only the next step settles.
			w.allowed = append(w.allowed, names(target))
			for range 30 {
				w.plan(target)
				w.deliver()
				w.deliver()
				for len(w.answers) > 0 {
					w.answers[0]()
					w.answers = w.answers[1:]
				}
			}
			continue
		}
		w.converge(target)
	}
}

// TestReconnectReadsWhatTheNodeRuns: a sequencer that never saw the node
// (a restarted control plane) sends nothing until the node reported its
// routes and slots, and then lays the same chain out exactly as the node
// runs it, so nothing moves.
func TestReconnectReadsWhatTheNodeRuns(t *testing.T) {
	a1, l1, t1 := want("auth", "v1", "", 0), want("logging", "v1", "", 0), want("transform", "v1", "", 0)
	w := newWorld(t, 7, 8, noFailures)
	w.converge(chain(a1, l1, t1))
	w.converge(chain(a1, t1, l1)) // leaves a layout that is not canonical
	target := chain(a1, t1, l1)

	restarted := New()
	restarted.Connected("n")
	if _, ok, _ := restarted.Next("n", 8, target); ok {
		t.Fatal("Next before any report: want to wait")
	}
	restarted.Reported("n", Listeners, true, nil, nil, true)
	restarted.Reported("n", Routes, true, w.node.routes, nil, true)
	if _, ok, _ := restarted.Next("n", 8, target); ok {
		t.Fatal("Next before the slots were reported: want to wait")
	}
	if !restarted.Reported("n", Slots, true, nil, w.node.running, true) {
		t.Fatal("all three reported: want ready")
	}
	step, ok, err := restarted.Next("n", 8, target)
	if err != nil || !ok {
		t.Fatalf("Next: %v %v", ok, err)
	}
	if !slices.Equal(step.Layout.Chain, w.node.routes) || !slices.Equal(step.keys, w.node.running) {
		t.Fatalf("after the restart: chain %v keys %v, want what runs: %v %v", step.Layout.Chain, step.keys, w.node.routes, w.node.running)
	}
}

// TestNoRoomForAReorder: a reorder needs free pairs beside the ones in use;
// without them the sequencer refuses rather than break a route.
func TestNoRoomForAReorder(t *testing.T) {
	a1, l1, t1 := want("auth", "v1", "", 0), want("logging", "v1", "", 0), want("transform", "v1", "", 0)
	w := newWorld(t, 3, 3, noFailures)
	w.converge(chain(a1, l1, t1))
	if _, _, err := w.seq.Next("n", 3, chain(t1, l1, a1)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("reversing 3 filters in 3 pairs: err %v, want ErrNoRoom", err)
	}
	// Moving one filter to the end fits: it takes the free pair... there
	// is none, but the two others stay in place ahead of it.
	if _, _, err := w.seq.Next("n", 3, chain(l1, t1)); err != nil {
		t.Fatalf("dropping auth: %v", err)
	}
}

// TestNackedRoutesStayLive: go-control-plane sends routes the node NACKed
// again, and the node may accept them then, so the slots they enable stay
// reserved for their filters until later routes are answered.
func TestNackedRoutesStayLive(t *testing.T) {
	a1, l1, t1 := want("auth", "v1", "", 0), want("logging", "v1", "", 0), want("transform", "v1", "", 0)
	s := New()
	s.Connected("n")
	s.Reported("n", Listeners, false, nil, nil, true)
	next := func(target []Want) Step {
		t.Helper()
		step, ok, err := s.Next("n", 4, target)
		if err != nil || !ok {
			t.Fatalf("Next(%v): ok %v err %v", names(target), ok, err)
		}
		s.Sent("n", step)
		return step
	}
	step := next(chain(a1))
	s.AnsweredSlots("n", step.keys, false)
	s.AnsweredRoutes("n", step.Layout.Chain, false)
	s.AnsweredSlots("n", next(chain(a1, l1)).keys, false)
	step = next(chain(a1, l1))
	if len(step.Layout.Chain) != 2 {
		t.Fatalf("logging loaded: routes %v, want auth and logging enabled", step.Layout.Chain)
	}
	s.AnsweredRoutes("n", step.Layout.Chain, true)

	step = next(chain(a1, t1))
	if got := step.Layout.Slots[2]; got.Filter != "logging" {
		t.Fatalf("after the node NACKed routes enabling logging in slot 2, slot 2 gets %+v; want logging kept there", got)
	}
}
