package rollout

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestCurrentPercent(t *testing.T) {
	tests := []struct {
		name string
		spec config.Filter
		step int
		want int
	}{
		{name: "default is 100", spec: spec("a", nil), want: 100},
		{name: "fixed percent", spec: spec("a", percent(25)), want: 25},
		{name: "first step", spec: spec("a", steps(time.Minute, 10, 50, 100)), step: 0, want: 10},
		{name: "second step", spec: spec("a", steps(time.Minute, 10, 50, 100)), step: 1, want: 50},
		{name: "step beyond shortened steps counts as the last", spec: spec("a", steps(time.Minute, 10, 100)), step: 5, want: 100},
		{name: "negative step counts as the first", spec: spec("a", steps(time.Minute, 10, 100)), step: -1, want: 10},
		{name: "steps win over percent", spec: spec("a", func(r *config.Rollout) { percent(70)(r); steps(time.Minute, 20, 100)(r) }), want: 20},
		{name: "defaults not applied", spec: config.Filter{Name: "a"}, want: 100},
		{name: "out of range is clamped", spec: spec("a", percent(250)), want: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CurrentPercent(tt.spec, types.FilterState{Step: tt.step}); got != tt.want {
				t.Fatalf("CurrentPercent = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPlan covers each rule of Plan on a small fleet whose buckets are known:
// for filter "auth", envoy-1 is in bucket 1232 and envoy-0 in bucket 4846.
func TestPlan(t *testing.T) {
	nodes := []string{"envoy-0", "envoy-1"}
	stable := func(d types.Digest) types.FilterVersions { return types.FilterVersions{Stable: d} }
	none := types.FilterVersions{}
	tests := []struct {
		name   string
		spec   config.Filter
		state  types.FilterState
		failed []string
		want   [2]types.FilterVersions // envoy-0, envoy-1; zero = absent
	}{
		{name: "no versions: absent", spec: spec("auth", nil), state: types.FilterState{}, want: [2]types.FilterVersions{none, none}},
		{name: "stable only", spec: spec("auth", nil), state: types.FilterState{Stable: v1}, want: [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "by node below both buckets", spec: spec("auth", percent(10)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "by node between the buckets", spec: spec("auth", percent(13)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v1), stable(v2)}},
		{name: "by node above both buckets", spec: spec("auth", percent(49)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "by node at 0%", spec: spec("auth", percent(0)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "current step decides", spec: spec("auth", steps(time.Minute, 10, 50, 100)), state: types.FilterState{Stable: v1, Candidate: v2, Step: 1},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "first version only inside the share", spec: spec("auth", percent(13)), state: types.FilterState{Candidate: v2},
			want: [2]types.FilterVersions{none, stable(v2)}},
		{name: "first version at 0% is absent", spec: spec("auth", percent(0)), state: types.FilterState{Candidate: v2},
			want: [2]types.FilterVersions{none, none}},
		{name: "by request splits every node", spec: spec("auth", byRequest(10)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{
				{Stable: v1, Candidate: v2, CandidateShare: 1000},
				{Stable: v1, Candidate: v2, CandidateShare: 1000}}},
		{name: "by request at 0% has no candidate", spec: spec("auth", byRequest(0)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "by request at 100% plans the candidate alone", spec: spec("auth", byRequest(100)), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "by request first version goes by node", spec: spec("auth", byRequest(13)), state: types.FilterState{Candidate: v2},
			want: [2]types.FilterVersions{none, stable(v2)}},
		{name: "default 100%: the candidate alone everywhere", spec: spec("auth", nil), state: types.FilterState{Stable: v1, Candidate: v2},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "first version at the default 100% everywhere", spec: spec("auth", nil), state: types.FilterState{Candidate: v2},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "first version by request at 100% everywhere", spec: spec("auth", byRequest(100)), state: types.FilterState{Candidate: v2},
			want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "retired: absent", spec: spec("auth", percent(13)), state: types.FilterState{Stable: v1, Candidate: v2, Retired: true},
			want: [2]types.FilterVersions{none, none}},
		{name: "retired required keeps stable, drops candidate",
			spec:  func() config.Filter { f := spec("auth", percent(13)); f.Required = true; return f }(),
			state: types.FilterState{Stable: v1, Candidate: v2, Retired: true},
			want:  [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "retired required with no stable: absent",
			spec:  func() config.Filter { f := spec("auth", nil); f.Required = true; return f }(),
			state: types.FilterState{Candidate: v2, Retired: true},
			want:  [2]types.FilterVersions{none, none}},
		{name: "candidate equal to stable is no split", spec: spec("auth", byRequest(10)), state: types.FilterState{Stable: v1, Candidate: v1},
			want: [2]types.FilterVersions{stable(v1), stable(v1)}},
		{name: "a node that failed the candidate stays on stable", spec: spec("auth", nil), state: types.FilterState{Stable: v1, Candidate: v2},
			failed: []string{"envoy-1"}, want: [2]types.FilterVersions{stable(v2), stable(v1)}},
		{name: "a failed node gets no request split either", spec: spec("auth", byRequest(10)), state: types.FilterState{Stable: v1, Candidate: v2},
			failed: []string{"envoy-0"}, want: [2]types.FilterVersions{stable(v1), {Stable: v1, Candidate: v2, CandidateShare: 1000}}},
		{name: "a failed first version has no stable to fall back on", spec: spec("auth", nil), state: types.FilterState{Candidate: v2},
			failed: []string{"envoy-1"}, want: [2]types.FilterVersions{stable(v2), stable(v2)}},
		{name: "a failed node outside the plan is not added", spec: spec("auth", nil), state: types.FilterState{Stable: v1, Candidate: v2},
			failed: []string{"gone"}, want: [2]types.FilterVersions{stable(v2), stable(v2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := FilterInput{Spec: tt.spec, State: tt.state, Failed: map[string]bool{}}
			for _, n := range tt.failed {
				in.Failed[n] = true
			}
			got := Plan([]FilterInput{in}, nodes)
			if len(got) != len(nodes) {
				t.Fatalf("Plan has %d nodes, want %d", len(got), len(nodes))
			}
			for i, n := range nodes {
				a, ok := got[n]
				if !ok || a == nil {
					t.Fatalf("node %s missing or nil in %v", n, got)
				}
				v, present := a["auth"]
				if want := tt.want[i]; v != want || present != (want != none) {
					t.Errorf("%s: auth = %+v (present %v), want %+v", n, v, present, want)
				}
			}
		})
	}
}

// TestPlanBucketBoundary checks the edges of a by-node share: a node in
// bucket b runs the candidate from percent b/100 + 1 on, not at b/100.
func TestPlanBucketBoundary(t *testing.T) {
	tests := []struct {
		name    string
		node    string
		bucket  int
		percent int
		want    types.Digest
	}{
		{name: "bucket 900 at 9%", node: "envoy-699", bucket: 900, percent: 9, want: v1},
		{name: "bucket 900 at 10%", node: "envoy-699", bucket: 900, percent: 10, want: v2},
		{name: "bucket 0 at 0%", node: "envoy-1125", bucket: 0, percent: 0, want: v1},
		{name: "bucket 0 at 1%", node: "envoy-1125", bucket: 0, percent: 1, want: v2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b := Bucket(tt.node, "auth"); b != tt.bucket {
				t.Fatalf("Bucket(%s, auth) = %d, want %d (see TestBucketGolden)", tt.node, b, tt.bucket)
			}
			in := []FilterInput{{Spec: spec("auth", percent(tt.percent)), State: types.FilterState{Stable: v1, Candidate: v2}}}
			if got := Plan(in, []string{tt.node})[tt.node]["auth"]; got != (types.FilterVersions{Stable: tt.want}) {
				t.Fatalf("%s at %d%% = %+v, want %s", tt.node, tt.percent, got, tt.want.Short())
			}
		})
	}
}

func TestPlanSeveralFilters(t *testing.T) {
	auth := FilterInput{Spec: spec("auth", nil), State: types.FilterState{Stable: v1}}
	logging := FilterInput{Spec: spec("logging", byRequest(25)), State: types.FilterState{Stable: v2, Candidate: v3}}
	gone := FilterInput{Spec: spec("transform", nil), State: types.FilterState{Stable: v3, Retired: true}}
	got := Plan([]FilterInput{auth, logging, gone}, []string{"a", "b"})
	want := types.Assignment{
		"auth":    {Stable: v1},
		"logging": {Stable: v2, Candidate: v3, CandidateShare: 2500},
	}
	for _, n := range []string{"a", "b"} {
		if !maps.Equal(got[n], want) {
			t.Errorf("node %s: %v, want %v", n, got[n], want)
		}
	}
}

func TestPlanDuplicateFilterLastWins(t *testing.T) {
	first := FilterInput{Spec: spec("auth", nil), State: types.FilterState{Stable: v1}}
	last := FilterInput{Spec: spec("auth", percent(13)), State: types.FilterState{Candidate: v2}}
	got := Plan([]FilterInput{first, last}, []string{"envoy-0", "envoy-1"})
	if _, ok := got["envoy-0"]["auth"]; ok {
		t.Errorf("envoy-0 keeps the first entry's auth: %v", got["envoy-0"])
	}
	if v := got["envoy-1"]["auth"]; v.Stable != v2 {
		t.Errorf("envoy-1 auth = %+v, want the last entry's v2", v)
	}
}

func TestPlanNoNodes(t *testing.T) {
	got := Plan([]FilterInput{{Spec: spec("auth", nil), State: types.FilterState{Stable: v1}}}, nil)
	if len(got) != 0 {
		t.Fatalf("Plan with no nodes = %v", got)
	}
}

// TestPlanShareByNode checks that by-node rollouts reach the configured share
// of the fleet. On 1,000 nodes the tolerance is 2 percentage points where
// that is at least two binomial standard deviations (the tails); in the
// middle one standard deviation is already 1.4-1.6 points, so a correct hash
// would miss +-2 there for many id sets, and the bound is three standard
// deviations instead. 100,000 nodes pin the middle to half a point.
func TestPlanShareByNode(t *testing.T) {
	tests := []struct {
		name      string
		nodes     int
		percent   int
		tolerance float64 // percentage points
	}{
		{name: "1k at 1%", nodes: 1000, percent: 1, tolerance: 2},
		{name: "1k at 5%", nodes: 1000, percent: 5, tolerance: 2},
		{name: "1k at 10%", nodes: 1000, percent: 10, tolerance: 2},
		{name: "1k at 25%", nodes: 1000, percent: 25, tolerance: 4.1},
		{name: "1k at 50%", nodes: 1000, percent: 50, tolerance: 4.7},
		{name: "1k at 75%", nodes: 1000, percent: 75, tolerance: 4.1},
		{name: "1k at 90%", nodes: 1000, percent: 90, tolerance: 2},
		{name: "1k at 99%", nodes: 1000, percent: 99, tolerance: 2},
		{name: "100k at 10%", nodes: 100000, percent: 10, tolerance: 0.5},
		{name: "100k at 25%", nodes: 100000, percent: 25, tolerance: 0.5},
		{name: "100k at 50%", nodes: 100000, percent: 50, tolerance: 0.5},
		{name: "100k at 75%", nodes: 100000, percent: 75, tolerance: 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := nodeIDs(tt.nodes)
			in := []FilterInput{{Spec: spec("auth", percent(tt.percent)), State: types.FilterState{Stable: v1, Candidate: v2}}}
			got := candidateNodes(Plan(in, nodes), "auth", v2)
			share := float64(len(got)) * 100 / float64(len(nodes))
			if math.Abs(share-float64(tt.percent)) > tt.tolerance {
				t.Fatalf("%d of %d nodes (%.2f%%) run the candidate, want %d%% +- %.1f", len(got), len(nodes), share, tt.percent, tt.tolerance)
			}
		})
	}
}

// TestPlanMonotone raises the percent one point at a time and checks that no
// node ever leaves the candidate (sticky), and that at every percent the
// candidate nodes are exactly a prefix in bucket order.
func TestPlanMonotone(t *testing.T) {
	nodes := nodeIDs(1000)
	for _, by := range []config.RolloutBy{config.ByNode, config.ByRequest} {
		t.Run(string(by), func(t *testing.T) {
			// by request falls back to by node for a first version; test both
			// with and without a stable version.
			for _, stable := range []types.Digest{v1, ""} {
				had := map[string]bool{}
				for p := 0; p <= 100; p++ {
					f := spec("auth", func(r *config.Rollout) { percent(p)(r); r.By = by })
					plan := Plan([]FilterInput{{Spec: f, State: types.FilterState{Stable: stable, Candidate: v2}}}, nodes)
					if by == config.ByRequest && stable != "" {
						if v := plan[nodes[0]]["auth"]; p > 0 && p < 100 && v.CandidateShare != types.BasisPoints(p*100) {
							t.Fatalf("%d%%: share %d", p, v.CandidateShare)
						}
						continue
					}
					now := candidateNodes(plan, "auth", v2)
					for n := range had {
						if !now[n] {
							t.Fatalf("stable=%q: raising to %d%% moved %s back from the candidate", stable, p, n)
						}
					}
					maxIn, minOut := -1, Buckets
					for _, n := range nodes {
						if now[n] {
							maxIn = max(maxIn, Bucket(n, "auth"))
						} else {
							minOut = min(minOut, Bucket(n, "auth"))
						}
					}
					if maxIn >= minOut {
						t.Fatalf("stable=%q, %d%%: a node in bucket %d runs the candidate but one in bucket %d does not", stable, p, maxIn, minOut)
					}
					had = now
				}
			}
		})
	}
}

// TestPlanByRequestShareExact checks the split is exactly the percent in
// basis points on every node, at every percent strictly between 0 and 100.
func TestPlanByRequestShareExact(t *testing.T) {
	nodes := nodeIDs(50)
	for p := 1; p < 100; p++ {
		plan := Plan([]FilterInput{{Spec: spec("auth", byRequest(p)), State: types.FilterState{Stable: v1, Candidate: v2}}}, nodes)
		for _, n := range nodes {
			want := types.FilterVersions{Stable: v1, Candidate: v2, CandidateShare: types.BasisPoints(p * 100)}
			if got := plan[n]["auth"]; got != want {
				t.Fatalf("%d%%: %s auth = %+v, want %+v", p, n, got, want)
			}
		}
	}
}

// TestPlanDeterministic plans the same inputs with the nodes and filters in
// different orders and expects the same answer.
func TestPlanDeterministic(t *testing.T) {
	nodes := nodeIDs(500)
	filters := []FilterInput{
		{Spec: spec("auth", percent(30)), State: types.FilterState{Stable: v1, Candidate: v2}},
		{Spec: spec("logging", byRequest(40)), State: types.FilterState{Stable: v2, Candidate: v3}},
		{Spec: spec("transform", steps(time.Minute, 10, 100)), State: types.FilterState{Candidate: v3}},
	}
	want := Plan(filters, nodes)
	revNodes := slices.Clone(nodes)
	slices.Reverse(revNodes)
	revFilters := slices.Clone(filters)
	slices.Reverse(revFilters)
	for _, got := range []map[string]types.Assignment{Plan(filters, nodes), Plan(revFilters, revNodes)} {
		if !maps.EqualFunc(got, want, maps.Equal) {
			t.Fatal("Plan differs for the same inputs")
		}
	}
}

func FuzzPlan(f *testing.F) {
	f.Add("envoy-", uint8(20), uint8(10), uint8(50), false, true, false, false)
	f.Add("n", uint8(100), uint8(0), uint8(100), true, true, false, false)
	f.Add("", uint8(1), uint8(99), uint8(1), true, false, false, false)
	f.Add("eu-west-1/", uint8(7), uint8(33), uint8(34), false, false, true, true)
	f.Add("\x00\xff", uint8(3), uint8(100), uint8(100), false, true, true, false)
	f.Fuzz(func(t *testing.T, prefix string, n, p1, p2 uint8, byReq, hasStable, retired, required bool) {
		lo, hi := min(int(p1), int(p2))%101, max(int(p1), int(p2))%101
		lo = min(lo, hi)
		var nodes []string
		for i := range int(n) {
			nodes = append(nodes, fmt.Sprintf("%s%d", prefix, i))
		}
		st := types.FilterState{Candidate: v2, Retired: retired}
		if hasStable {
			st.Stable = v1
		}
		mk := func(p int) FilterInput {
			s := spec("fuzz", percent(p))
			if byReq {
				s.Rollout.By = config.ByRequest
			}
			s.Required = required
			return FilterInput{Spec: s, State: st}
		}
		low := Plan([]FilterInput{mk(lo)}, nodes)
		rev := slices.Clone(nodes)
		slices.Reverse(rev)
		if again := Plan([]FilterInput{mk(lo)}, rev); !maps.EqualFunc(low, again, maps.Equal) {
			t.Fatal("Plan is not deterministic")
		}
		high := Plan([]FilterInput{mk(hi)}, nodes)
		for _, plan := range []map[string]types.Assignment{low, high} {
			if len(plan) != len(slices.Compact(slices.Sorted(slices.Values(nodes)))) {
				t.Fatalf("plan has %d nodes for %d distinct ids", len(plan), len(nodes))
			}
			for node, a := range plan {
				v, ok := a["fuzz"]
				if !ok {
					continue
				}
				switch {
				case retired && !required:
					t.Fatalf("%s: retired filter planned: %+v", node, v)
				case retired && v != types.FilterVersions{Stable: v1}:
					t.Fatalf("%s: retired required filter = %+v, want stable only", node, v)
				case v.Stable != v1 && v.Stable != v2:
					t.Fatalf("%s: unknown stable %q", node, v.Stable)
				case v.Candidate != "" && (v.Candidate != v2 || v.Stable != v1 || v.CandidateShare <= 0 || v.CandidateShare >= Buckets):
					t.Fatalf("%s: bad split %+v", node, v)
				case v.Candidate == "" && v.CandidateShare != 0:
					t.Fatalf("%s: share without candidate %+v", node, v)
				}
			}
		}
		// At 100% every node runs the candidate alone, by node or by
		// request, with or without a stable version.
		if !retired && hi == 100 && len(candidateNodes(high, "fuzz", v2)) != len(high) {
			t.Fatalf("at 100%% only %d of %d nodes run the candidate alone", len(candidateNodes(high, "fuzz", v2)), len(high))
		}
		for node := range candidateNodes(low, "fuzz", v2) {
			if !candidateNodes(high, "fuzz", v2)[node] {
				t.Fatalf("%s runs the candidate at %d%% but not at %d%%", node, lo, hi)
			}
		}
	})
}

// candidateNodes returns the nodes whose only version of filter is cand.
func candidateNodes(plan map[string]types.Assignment, filter string, cand types.Digest) map[string]bool {
	out := map[string]bool{}
	for n, a := range plan {
		if v, ok := a[filter]; ok && v.Stable == cand && v.Candidate == "" {
			out[n] = true
		}
	}
	return out
}

func BenchmarkPlan(b *testing.B) {
	nodes := nodeIDs(10000)
	filters := []FilterInput{
		{Spec: spec("auth", percent(10)), State: types.FilterState{Stable: v1, Candidate: v2}},
		{Spec: spec("logging", byRequest(25)), State: types.FilterState{Stable: v2, Candidate: v3}},
		{Spec: spec("transform", nil), State: types.FilterState{Stable: v3}},
	}
	b.ReportAllocs()
	for b.Loop() {
		Plan(filters, nodes)
	}
}
