package rollout

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestAdmitted(t *testing.T) {
	bad := types.BadMark{Digest: v2, Node: "envoy-3", Reason: "nacked: on_configure failed", At: t0.Add(-time.Hour)}
	earlier := t0.Add(-10 * time.Minute)
	tests := []struct {
		name       string
		spec       config.Filter
		in         types.FilterState
		d          types.Digest
		want       types.FilterState
		wantAction Action
		wantReason string
	}{
		{name: "first version at the default 100% is a candidate", spec: spec("auth", nil),
			in: types.FilterState{}, d: v1,
			want: types.FilterState{Filter: "auth", Candidate: v1, StepSince: t0}, wantAction: Candidate, wantReason: "100%"},
		{name: "new version at the default 100% is a candidate beside stable", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate, wantReason: "100%"},
		{name: "new version at 100% by request is a candidate beside stable", spec: spec("auth", byRequest(100)),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate},
		{name: "percent below 100 makes a candidate", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate, wantReason: "10%"},
		{name: "first version with steps is a candidate", spec: spec("auth", steps(time.Minute, 10, 100)),
			in: types.FilterState{}, d: v1,
			want: types.FilterState{Filter: "auth", Candidate: v1, StepSince: t0}, wantAction: Candidate},
		{name: "a single step of 100 is held as a candidate", spec: spec("auth", steps(time.Minute, 100)),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate},
		{name: "percent 0 makes a candidate nobody runs yet", spec: spec("auth", percent(0)),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate},
		{name: "a bad version is ignored", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{bad}}, d: v2,
			want:       types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{bad}},
			wantAction: Ignored, wantReason: "nacked: on_configure failed"},
		{name: "a bad version is ignored at 100% too", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{bad}}, d: v2,
			want:       types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{bad}},
			wantAction: Ignored, wantReason: "marked bad"},
		{name: "the candidate again is unchanged", spec: spec("auth", steps(time.Minute, 10, 50, 100)),
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: earlier}, d: v2,
			want:       types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: earlier},
			wantAction: Unchanged},
		{name: "the stable version again is unchanged", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1}, d: v1,
			want: types.FilterState{Filter: "auth", Stable: v1}, wantAction: Unchanged},
		{name: "returning to stable withdraws the candidate without marking it bad", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: earlier, Paused: true}, d: v1,
			want:       types.FilterState{Filter: "auth", Stable: v1},
			wantAction: Stable, wantReason: "withdrawn"},
		{name: "a newer version replaces the candidate and its pause", spec: spec("auth", steps(time.Minute, 10, 50, 100)),
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: earlier, Paused: true}, d: v3,
			want:       types.FilterState{Filter: "auth", Stable: v1, Candidate: v3, StepSince: t0},
			wantAction: Candidate, wantReason: "replaced"},
		{name: "at 100% a newer version replaces the candidate, stable kept", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: earlier}, d: v3,
			want:       types.FilterState{Filter: "auth", Stable: v1, Candidate: v3, StepSince: t0},
			wantAction: Candidate, wantReason: "replaced"},
		{name: "a retired filter's stable version brings it back", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1, Retired: true}, d: v1,
			want: types.FilterState{Filter: "auth", Stable: v1}, wantAction: Stable, wantReason: "restored"},
		{name: "a retired filter's new version rolls out", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Stable: v1, Retired: true}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate},
		{name: "a retired filter's new version at 100% is a candidate too", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1, Retired: true}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0}, wantAction: Candidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dec := Admitted(tt.spec, tt.in, tt.d, t0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state = %+v\nwant    %+v", got, tt.want)
			}
			if dec.Action != tt.wantAction || !strings.Contains(dec.Reason, tt.wantReason) {
				t.Errorf("decision = %+v, want action %q with reason containing %q", dec, tt.wantAction, tt.wantReason)
			}
			if dec.Reason == "" || dec.String() != string(dec.Action)+": "+dec.Reason {
				t.Errorf("decision %+v renders as %q", dec, dec.String())
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	stepped := spec("auth", steps(time.Minute, 10, 50, 100))
	at := func(step int, since time.Time) types.FilterState {
		return types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: step, StepSince: since}
	}
	tests := []struct {
		name        string
		spec        config.Filter
		in          types.FilterState
		now         time.Time
		want        types.FilterState
		wantDue     time.Time
		wantChanged bool
	}{
		{name: "no candidate", spec: stepped, in: types.FilterState{Filter: "auth", Stable: v1}, now: t0,
			want: types.FilterState{Filter: "auth", Stable: v1}},
		{name: "paused does not move even when overdue", spec: stepped,
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0, Paused: true}, now: t0.Add(time.Hour),
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0, Paused: true}},
		{name: "before the interval: unchanged, due at its end", spec: stepped, in: at(0, t0), now: t0.Add(59 * time.Second),
			want: at(0, t0), wantDue: t0.Add(time.Minute)},
		{name: "at the end of the interval: next step", spec: stepped, in: at(0, t0), now: t0.Add(time.Minute),
			want: at(1, t0.Add(time.Minute)), wantDue: t0.Add(2 * time.Minute), wantChanged: true},
		{name: "long overdue: one step, held from now", spec: stepped, in: at(0, t0), now: t0.Add(time.Hour),
			want: at(1, t0.Add(time.Hour)), wantDue: t0.Add(time.Hour + time.Minute), wantChanged: true},
		{name: "reaching 100 keeps the candidate, nothing scheduled", spec: stepped, in: at(1, t0), now: t0.Add(time.Minute),
			want: at(2, t0.Add(time.Minute)), wantChanged: true},
		{name: "at the step of 100 nothing moves, however long", spec: stepped, in: at(2, t0), now: t0.Add(24 * time.Hour),
			want: at(2, t0)},
		{name: "a single step of 100 is held with nothing scheduled", spec: spec("auth", steps(time.Minute, 100)),
			in: at(0, t0), now: t0.Add(time.Hour), want: at(0, t0)},
		{name: "steps shortened under a running candidate: held at the last, 100", spec: spec("auth", steps(time.Minute, 50, 100)),
			in: at(4, t0), now: t0.Add(time.Minute), want: at(4, t0)},
		{name: "a last step below 100 (spec not validated) waits for an operator", spec: spec("auth", steps(time.Minute, 10, 50)),
			in: at(1, t0), now: t0.Add(time.Hour), want: at(1, t0)},
		{name: "without steps below 100 waits for an operator", spec: spec("auth", percent(10)),
			in: at(0, t0), now: t0.Add(24 * time.Hour), want: at(0, t0)},
		{name: "without steps at 100 the candidate stays the candidate", spec: spec("auth", nil),
			in: at(0, t0), now: t0.Add(24 * time.Hour), want: at(0, t0)},
		{name: "by request at 100 the candidate stays the candidate", spec: spec("auth", byRequest(100)),
			in: at(0, t0), now: t0.Add(24 * time.Hour), want: at(0, t0)},
		{name: "a first version reaches 100 the same way", spec: stepped,
			in:   types.FilterState{Filter: "auth", Candidate: v2, Step: 1, StepSince: t0},
			now:  t0.Add(time.Minute),
			want: types.FilterState{Filter: "auth", Candidate: v2, Step: 2, StepSince: t0.Add(time.Minute)}, wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, due, changed := Advance(tt.spec, tt.in, tt.now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state = %+v\nwant    %+v", got, tt.want)
			}
			if !due.Equal(tt.wantDue) {
				t.Errorf("due = %v, want %v", due, tt.wantDue)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			// What status shows as the next step is when Advance will move.
			if next := NextStepAt(tt.spec, tt.in); !changed && !next.Equal(tt.wantDue) {
				t.Errorf("NextStepAt = %v, want %v", next, tt.wantDue)
			}
		})
	}
}

func TestConfirmed(t *testing.T) {
	stepped := spec("auth", steps(time.Minute, 10, 50, 100))
	cand := func(step int) types.FilterState {
		return types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: step, StepSince: t0}
	}
	paused := cand(0)
	paused.Paused = true
	bad := []types.BadMark{{Digest: v3, Reason: "nacked"}}
	tests := []struct {
		name     string
		spec     config.Filter
		in       types.FilterState
		d        types.Digest
		want     types.FilterState
		wantDone bool
	}{
		{name: "default 100% without steps: promoted", spec: spec("auth", nil), in: cand(0), d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2}, wantDone: true},
		{name: "by request at 100%: promoted", spec: spec("auth", byRequest(100)), in: cand(0), d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2}, wantDone: true},
		{name: "at the step of 100: promoted", spec: stepped, in: cand(2), d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2}, wantDone: true},
		{name: "steps shortened, step beyond a last of 100: promoted", spec: spec("auth", steps(time.Minute, 50, 100)), in: cand(4), d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2}, wantDone: true},
		{name: "a first version: promoted", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Candidate: v2, StepSince: t0}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2}, wantDone: true},
		{name: "bad marks are kept", spec: spec("auth", nil),
			in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, StepSince: t0, Bad: bad}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v2, Bad: bad}, wantDone: true},
		{name: "wrong digest: the stable version", spec: spec("auth", nil), in: cand(0), d: v1, want: cand(0)},
		{name: "wrong digest: another version", spec: spec("auth", nil), in: cand(0), d: v3, want: cand(0)},
		{name: "no candidate", spec: spec("auth", nil), in: types.FilterState{Filter: "auth", Stable: v1}, d: v1,
			want: types.FilterState{Filter: "auth", Stable: v1}},
		{name: "no candidate, empty digest", spec: spec("auth", nil), in: types.FilterState{Filter: "auth", Stable: v1}, d: "",
			want: types.FilterState{Filter: "auth", Stable: v1}},
		{name: "not at 100%: fixed percent", spec: spec("auth", percent(99)), in: cand(0), d: v2, want: cand(0)},
		{name: "not at 100%: by request", spec: spec("auth", byRequest(50)), in: cand(0), d: v2, want: cand(0)},
		{name: "not at 100%: an earlier step", spec: stepped, in: cand(1), d: v2, want: cand(1)},
		{name: "paused at 100%", spec: spec("auth", nil), in: paused, d: v2, want: paused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done := Confirmed(tt.spec, tt.in, tt.d)
			if !reflect.DeepEqual(got, tt.want) || done != tt.wantDone {
				t.Errorf("Confirmed = %+v, %v\nwant        %+v, %v", got, done, tt.want, tt.wantDone)
			}
		})
	}
}

// TestNackAlwaysRollsBack admits a new version under each kind of rollout
// and checks, at admission and after every step Advance takes, that the
// version is still a candidate a NACK can roll back: Failed returns every
// node to the previous stable version (or, for a first version, removes the
// filter from every node). Where the rollout reaches 100% every node runs
// the candidate alone, and only Confirmed makes it stable.
func TestNackAlwaysRollsBack(t *testing.T) {
	nodes := nodeIDs(200)
	tests := []struct {
		name      string
		spec      config.Filter
		reach100  bool
		wantSteps int
	}{
		{name: "default: 100% without steps", spec: spec("auth", nil), reach100: true},
		{name: "100% by request", spec: spec("auth", byRequest(100)), reach100: true},
		{name: "10% by node", spec: spec("auth", percent(10))},
		{name: "30% by request", spec: spec("auth", byRequest(30))},
		{name: "steps 10, 50, 100", spec: spec("auth", steps(time.Minute, 10, 50, 100)), reach100: true, wantSteps: 2},
		{name: "single step of 100", spec: spec("auth", steps(time.Minute, 100)), reach100: true},
		{name: "steps by request", spec: spec("auth", func(r *config.Rollout) {
			steps(time.Minute, 25, 100)(r)
			r.By = config.ByRequest
		}), reach100: true, wantSteps: 1},
	}
	for _, tt := range tests {
		for _, prev := range []types.Digest{v1, ""} {
			t.Run(fmt.Sprintf("%s/stable=%q", tt.name, prev.Short()), func(t *testing.T) {
				plan := func(st types.FilterState) map[string]types.Assignment {
					return Plan([]FilterInput{{Spec: tt.spec, State: st}}, nodes)
				}
				nackable := func(st types.FilterState) {
					t.Helper()
					if st.Candidate != v2 || st.Stable != prev {
						t.Fatalf("state %+v: want candidate %s beside stable %q", st, v2.Short(), prev.Short())
					}
					back, rolled := Failed(tt.spec, st, types.BadMark{Digest: v2, Reason: "nacked"}, 1)
					if !rolled {
						t.Fatalf("a NACK of the candidate did not roll back %+v", st)
					}
					for n, a := range plan(back) {
						v, ok := a["auth"]
						if prev == "" && ok || prev != "" && v != (types.FilterVersions{Stable: prev}) {
							t.Fatalf("after the NACK %s runs %+v (present %v), want stable %q only", n, v, ok, prev.Short())
						}
					}
				}
				st, dec := Admitted(tt.spec, types.FilterState{Filter: "auth", Stable: prev}, v2, t0)
				if dec.Action != Candidate {
					t.Fatalf("Admitted: %+v", dec)
				}
				nackable(st)
				now, moves := t0, 0
				for {
					next, due, changed := Advance(tt.spec, st, now)
					if changed {
						st, moves = next, moves+1
						nackable(st)
					}
					if due.IsZero() {
						break
					}
					if moves > 10 {
						t.Fatalf("Advance keeps scheduling: %+v", st)
					}
					now = due
				}
				if moves != tt.wantSteps {
					t.Fatalf("Advance moved %d times, want %d", moves, tt.wantSteps)
				}
				if got := CurrentPercent(tt.spec, st) == 100; got != tt.reach100 {
					t.Fatalf("at rest at %d%%, want 100%% %v", CurrentPercent(tt.spec, st), tt.reach100)
				}
				if tt.reach100 {
					if got := len(candidateNodes(plan(st), "auth", v2)); got != len(nodes) {
						t.Fatalf("at 100%% %d of %d nodes run the candidate alone", got, len(nodes))
					}
				}
				st, done := Confirmed(tt.spec, st, v2)
				if done != tt.reach100 || tt.reach100 && (st.Stable != v2 || st.Candidate != "") {
					t.Fatalf("Confirmed = %+v, %v; want promoted %v", st, done, tt.reach100)
				}
			})
		}
	}
}

func TestFailed(t *testing.T) {
	mark := types.BadMark{Digest: v2, Node: "envoy-7", Reason: "nacked: wasm: failed to load", At: t0}
	old := types.BadMark{Digest: v2, Reason: "an older failure", At: t0.Add(-time.Hour)}
	other := types.BadMark{Digest: v3, Reason: "other", At: t0.Add(-time.Hour)}
	running := types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: t0, Paused: true}
	tests := []struct {
		name       string
		spec       config.Filter
		in         types.FilterState
		mark       types.BadMark
		failed     int
		want       types.FilterState
		wantRolled bool
	}{
		{name: "first failure rolls back by default", spec: spec("auth", percent(10)), in: running, mark: mark, failed: 1,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{mark}}, wantRolled: true},
		{name: "failures up to the limit are tolerated",
			spec: spec("auth", func(r *config.Rollout) { r.MaxFailedNodes = 2 }), in: running, mark: mark, failed: 2,
			want: running},
		{name: "one past the limit rolls back",
			spec: spec("auth", func(r *config.Rollout) { r.MaxFailedNodes = 2 }), in: running, mark: mark, failed: 3,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{mark}}, wantRolled: true},
		{name: "a failure of the stable version changes nothing", spec: spec("auth", percent(10)), in: running,
			mark: types.BadMark{Digest: v1, Reason: "nacked"}, failed: 5, want: running},
		{name: "a late failure of a rolled-back version changes nothing", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{mark}}, mark: mark, failed: 9,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{mark}}},
		{name: "a first version rolled back leaves nothing", spec: spec("auth", percent(10)),
			in: types.FilterState{Filter: "auth", Candidate: v2, StepSince: t0}, mark: mark, failed: 1,
			want: types.FilterState{Filter: "auth", Bad: []types.BadMark{mark}}, wantRolled: true},
		{name: "the new mark replaces an older one of the same version, others stay", spec: spec("auth", percent(10)),
			in:   types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Bad: []types.BadMark{old, other}},
			mark: mark, failed: 1,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{other, mark}}, wantRolled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rolled := Failed(tt.spec, tt.in, tt.mark, tt.failed)
			if !reflect.DeepEqual(got, tt.want) || rolled != tt.wantRolled {
				t.Errorf("Failed = %+v, %v\nwant     %+v, %v", got, rolled, tt.want, tt.wantRolled)
			}
		})
	}
}

func TestRemoved(t *testing.T) {
	tests := []struct {
		name string
		in   types.FilterState
		want types.FilterState
	}{
		{name: "stable only", in: types.FilterState{Filter: "auth", Stable: v1},
			want: types.FilterState{Filter: "auth", Stable: v1, Retired: true}},
		{name: "candidate is dropped", in: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: t0, Paused: true},
			want: types.FilterState{Filter: "auth", Stable: v1, Retired: true}},
		{name: "bad marks are kept", in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{{Digest: v3}}},
			want: types.FilterState{Filter: "auth", Stable: v1, Retired: true, Bad: []types.BadMark{{Digest: v3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Removed(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Removed = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	s := spec("auth", steps(time.Minute, 10, 50, 100))
	running := types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: t0.Add(-time.Hour)}
	paused := running
	paused.Paused = true
	idle := types.FilterState{Filter: "auth", Stable: v1}
	rollback := func(reason string) func(config.Filter, types.FilterState, time.Time) (types.FilterState, error) {
		return func(spec config.Filter, st types.FilterState, now time.Time) (types.FilterState, error) {
			return Rollback(spec, st, now, reason)
		}
	}
	tests := []struct {
		name    string
		cmd     func(config.Filter, types.FilterState, time.Time) (types.FilterState, error)
		in      types.FilterState
		want    types.FilterState
		wantErr error
	}{
		{name: "promote", cmd: Promote, in: running, want: types.FilterState{Filter: "auth", Stable: v2}},
		{name: "promote while paused", cmd: Promote, in: paused, want: types.FilterState{Filter: "auth", Stable: v2}},
		{name: "promote without candidate", cmd: Promote, in: idle, want: idle, wantErr: ErrNoCandidate},
		{name: "pause", cmd: Pause, in: running, want: paused},
		{name: "pause twice", cmd: Pause, in: paused, want: paused, wantErr: ErrPaused},
		{name: "pause without candidate", cmd: Pause, in: idle, want: idle, wantErr: ErrNoCandidate},
		{name: "resume holds the step from now", cmd: Resume, in: paused,
			want: types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Step: 1, StepSince: t0}},
		{name: "resume when not paused", cmd: Resume, in: running, want: running, wantErr: ErrNotPaused},
		{name: "resume without candidate", cmd: Resume, in: idle, want: idle, wantErr: ErrNoCandidate},
		{name: "rollback marks the candidate bad", cmd: rollback("p99 latency doubled"), in: paused,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{{Digest: v2, Reason: "p99 latency doubled", At: t0}}}},
		{name: "rollback without a reason says who", cmd: rollback(""), in: running,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{{Digest: v2, Reason: "rolled back by an operator", At: t0}}}},
		{name: "rollback without candidate", cmd: rollback("x"), in: idle, want: idle, wantErr: ErrNoCandidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cmd(s, tt.in, t0)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "rollout: auth: ") {
				t.Errorf("error %q does not start with its subject", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestClearBad(t *testing.T) {
	m2 := types.BadMark{Digest: v2, Reason: "nacked"}
	m3 := types.BadMark{Digest: v3, Reason: "nacked"}
	tests := []struct {
		name    string
		in      types.FilterState
		d       types.Digest
		want    types.FilterState
		wantErr error
	}{
		{name: "clears one of several", in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{m2, m3}}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{m3}}},
		{name: "clears the last", in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{m2}}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1}},
		{name: "not marked", in: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{m3}}, d: v2,
			want: types.FilterState{Filter: "auth", Stable: v1, Bad: []types.BadMark{m3}}, wantErr: ErrNotBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ClearBad(tt.in, tt.d)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

// TestTransitionsLeaveInputAlone checks that no transition writes through the
// Bad slice it was given, even when that slice has spare capacity: callers
// keep the old state (to compare, or because the store still holds it).
func TestTransitionsLeaveInputAlone(t *testing.T) {
	bad := make([]types.BadMark, 2, 8)
	bad[0] = types.BadMark{Digest: v3, Reason: "old"}
	bad[1] = types.BadMark{Digest: v1, Reason: "older"}
	in := types.FilterState{Filter: "auth", Stable: v1, Candidate: v2, Bad: bad}
	snapshot := append([]types.BadMark(nil), bad[:cap(bad)]...)

	s := spec("auth", percent(10))
	_, _ = Failed(s, in, types.BadMark{Digest: v2, Reason: "nacked"}, 1)
	_, _ = Rollback(s, in, t0, "manual")
	_, _ = ClearBad(in, v3)
	_, _ = Admitted(s, in, v3, t0)
	_, _ = Confirmed(spec("auth", nil), in, v2)

	if !reflect.DeepEqual(bad[:cap(bad)], snapshot) {
		t.Fatalf("the input's Bad slice was written: %+v", bad[:cap(bad)])
	}
}

// TestWalkthrough drives one filter through a whole life: a first version
// under the default rollout goes to every node as a candidate and becomes
// stable once confirmed; a stepped rollout is sticky across steps and stops
// at 100 until confirmed; then a version under the default rollout reaches
// every node at once, is NACKed and rolled back to the previous stable
// version, refused while bad, and allowed again.
func TestWalkthrough(t *testing.T) {
	def := spec("auth", nil)
	s := spec("auth", steps(time.Minute, 10, 50, 100))
	nodes := nodeIDs(1000)
	runs := func(spec config.Filter, st types.FilterState, d types.Digest) map[string]bool {
		return candidateNodes(Plan([]FilterInput{{Spec: spec, State: st}}, nodes), "auth", d)
	}

	now := t0
	st, dec := Admitted(def, types.FilterState{}, v1, now)
	if dec.Action != Candidate || st.Candidate != v1 {
		t.Fatalf("first version at the default: %+v, %+v", st, dec)
	}
	if got := len(runs(def, st, v1)); got != len(nodes) {
		t.Fatalf("first version at the default reaches %d nodes, want all", got)
	}
	if _, due, changed := Advance(def, st, now.Add(time.Hour)); changed || !due.IsZero() {
		t.Fatalf("Advance moved a candidate at 100%%: changed %v, due %v", changed, due)
	}
	st, ok := Confirmed(def, st, v1)
	if !ok || st.Stable != v1 || st.Candidate != "" {
		t.Fatalf("confirming v1: %+v, %v", st, ok)
	}

	st, dec = Admitted(s, st, v2, now)
	if dec.Action != Candidate {
		t.Fatalf("v2 decision %+v", dec)
	}
	at10 := runs(s, st, v2)
	if n := len(at10); n < 80 || n > 120 {
		t.Fatalf("at 10%% the candidate runs on %d nodes", n)
	}
	if _, ok := Confirmed(s, st, v2); ok {
		t.Fatal("v2 confirmed at 10%")
	}

	st, due, changed := Advance(s, st, now.Add(30*time.Second))
	if changed || !due.Equal(now.Add(time.Minute)) {
		t.Fatalf("Advance early: changed %v, due %v", changed, due)
	}
	now = due
	st, _, changed = Advance(s, st, now)
	if !changed || st.Step != 1 {
		t.Fatalf("Advance at due: %+v", st)
	}
	at50 := runs(s, st, v2)
	for n := range at10 {
		if !at50[n] {
			t.Fatalf("%s had the candidate at 10%% but not at 50%%", n)
		}
	}

	now = now.Add(time.Minute)
	st, due, changed = Advance(s, st, now)
	if !changed || st.Stable != v1 || st.Candidate != v2 || CurrentPercent(s, st) != 100 || !due.IsZero() {
		t.Fatalf("reaching 100: %+v due %v", st, due)
	}
	if got := len(runs(s, st, v2)); got != len(nodes) {
		t.Fatalf("at 100%% %d nodes run the candidate, want all", got)
	}
	if _, ok := Confirmed(s, st, v1); ok {
		t.Fatal("an ACK of the stable version confirmed the candidate")
	}
	if st, ok = Confirmed(s, st, v2); !ok || st.Stable != v2 || st.Candidate != "" {
		t.Fatalf("confirming v2: %+v, %v", st, ok)
	}

	st, dec = Admitted(def, st, v3, now)
	if dec.Action != Candidate || st.Stable != v2 {
		t.Fatalf("v3 at the default: %+v, %+v", st, dec)
	}
	if got := len(runs(def, st, v3)); got != len(nodes) {
		t.Fatalf("v3 at the default reaches %d nodes, want all", got)
	}
	mark := types.BadMark{Digest: v3, Node: nodes[0], Reason: "nacked", At: now}
	st, rolled := Failed(def, st, mark, 1)
	if !rolled {
		t.Fatal("failure of the candidate did not roll back")
	}
	if got := len(runs(def, st, v2)); got != len(nodes) {
		t.Fatalf("after the rollback %d nodes run stable, want all", got)
	}
	if _, dec = Admitted(def, st, v3, now); dec.Action != Ignored {
		t.Fatalf("bad v3 admitted again: %+v", dec)
	}
	st, err := ClearBad(st, v3)
	if err != nil {
		t.Fatal(err)
	}
	if st, dec = Admitted(def, st, v3, now); dec.Action != Candidate || st.Candidate != v3 || st.Stable != v2 {
		t.Fatalf("cleared v3: %+v, %+v", st, dec)
	}
}
