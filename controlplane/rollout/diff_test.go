package rollout

import (
	"reflect"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestDiff(t *testing.T) {
	split := types.FilterVersions{Stable: v1, Candidate: v2, CandidateShare: 1000}
	tests := []struct {
		name   string
		before map[string]types.Assignment
		after  map[string]types.Assignment
		want   []Change
	}{
		{name: "both empty", want: nil},
		{name: "identical", before: map[string]types.Assignment{"a": {"auth": {Stable: v1}}},
			after: map[string]types.Assignment{"a": {"auth": {Stable: v1}}}, want: nil},
		{name: "version changes, sorted by node then filter",
			before: map[string]types.Assignment{
				"b": {"auth": {Stable: v1}, "logging": {Stable: v1}},
				"a": {"auth": {Stable: v1}, "logging": {Stable: v1}},
			},
			after: map[string]types.Assignment{
				"b": {"auth": {Stable: v2}, "logging": {Stable: v1}},
				"a": {"auth": {Stable: v1}, "logging": split},
			},
			want: []Change{
				{Node: "a", Filter: "logging", From: types.FilterVersions{Stable: v1}, To: split},
				{Node: "b", Filter: "auth", From: types.FilterVersions{Stable: v1}, To: types.FilterVersions{Stable: v2}},
			}},
		{name: "share changes", before: map[string]types.Assignment{"a": {"auth": split}},
			after: map[string]types.Assignment{"a": {"auth": {Stable: v1, Candidate: v2, CandidateShare: 5000}}},
			want:  []Change{{Node: "a", Filter: "auth", From: split, To: types.FilterVersions{Stable: v1, Candidate: v2, CandidateShare: 5000}}}},
		{name: "filter added and removed",
			before: map[string]types.Assignment{"a": {"auth": {Stable: v1}}},
			after:  map[string]types.Assignment{"a": {"logging": {Stable: v3}}},
			want: []Change{
				{Node: "a", Filter: "auth", From: types.FilterVersions{Stable: v1}},
				{Node: "a", Filter: "logging", To: types.FilterVersions{Stable: v3}},
			}},
		{name: "node joins and leaves",
			before: map[string]types.Assignment{"gone": {"auth": {Stable: v1}}, "idle": {}},
			after:  map[string]types.Assignment{"new": {"auth": {Stable: v1}}},
			want: []Change{
				{Node: "gone", Filter: "auth", From: types.FilterVersions{Stable: v1}},
				{Node: "new", Filter: "auth", To: types.FilterVersions{Stable: v1}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Diff(tt.before, tt.after); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %v\nwant   %v", got, tt.want)
			}
		})
	}
}

// TestDiffOfPlans diffs two real plans: raising a by-node rollout from 10% to
// 50% only moves nodes from stable to candidate.
func TestDiffOfPlans(t *testing.T) {
	nodes := nodeIDs(200)
	st := types.FilterState{Stable: v1, Candidate: v2}
	before := Plan([]FilterInput{{Spec: spec("auth", percent(10)), State: st}}, nodes)
	after := Plan([]FilterInput{{Spec: spec("auth", percent(50)), State: st}}, nodes)
	changes := Diff(before, after)
	want := len(candidateNodes(after, "auth", v2)) - len(candidateNodes(before, "auth", v2))
	if len(changes) != want || want == 0 {
		t.Fatalf("%d changes, want %d", len(changes), want)
	}
	for _, c := range changes {
		if c.From != (types.FilterVersions{Stable: v1}) || c.To != (types.FilterVersions{Stable: v2}) {
			t.Fatalf("unexpected change %v", c)
		}
	}
}

func TestChangeString(t *testing.T) {
	tests := []struct {
		name   string
		change Change
		want   string
	}{
		{name: "swap", change: Change{Node: "envoy-1", Filter: "auth", From: types.FilterVersions{Stable: v1}, To: types.FilterVersions{Stable: v2}},
			want: "envoy-1 auth: " + v1.Short() + " -> " + v2.Short()},
		{name: "split", change: Change{Node: "n", Filter: "auth", From: types.FilterVersions{Stable: v1},
			To: types.FilterVersions{Stable: v1, Candidate: v2, CandidateShare: 1005}},
			want: "n auth: " + v1.Short() + " -> " + v1.Short() + " + " + v2.Short() + " (10.05%)"},
		{name: "added", change: Change{Node: "n", Filter: "auth", To: types.FilterVersions{Stable: v1}},
			want: "n auth: (absent) -> " + v1.Short()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.change.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}
