package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// The transitions below take a FilterState by value and return the next one;
// they never modify the caller's state (the Bad slice is copied before it is
// changed), so a caller can compare before and after or discard the result.

// Action says what Admitted did with a version.
type Action string

const (
	// Ignored: the version is marked bad and was not rolled out.
	Ignored Action = "ignored"
	// Unchanged: the version already is the filter's stable version or its
	// candidate; the state is as it was.
	Unchanged Action = "unchanged"
	// Stable: the version already was the stable version and is again served
	// alone: a candidate was withdrawn or a retired filter restored.
	Stable Action = "stable"
	// Candidate: the version became the candidate at step 0.
	Candidate Action = "candidate"
)

// Decision explains what Admitted did, for logs and the filter's history.
type Decision struct {
	Action Action
	// Reason is a short sentence saying why, e.g. the bad mark's reason for
	// Ignored or the candidate that was replaced.
	Reason string
}

func (d Decision) String() string { return string(d.Action) + ": " + d.Reason }

// Admitted returns the state after a new version d of the filter passed
// admission at time now:
//   - d is marked bad: Ignored, state unchanged (ClearBad allows it again);
//   - d is already the candidate (or the stable version with no candidate,
//     filter not retired): Unchanged;
//   - d is the stable version while a candidate rolls out (the source went
//     back to it): the candidate is withdrawn, not marked bad, and every node
//     returns to stable;
//   - otherwise d becomes the candidate at step 0, replacing any previous
//     candidate; a pause of the previous candidate does not carry over.
//
// A new version is always a candidate, never stable at once, even with the
// default rollout (percent 100, no steps): there it goes to every node at
// once, but the previous stable version is kept so that a NACK of d (Failed)
// still has somewhere to return to. Only Confirmed, once every node has
// ACKed d at 100%, or an operator's Promote makes it stable.
//
// Any version admitted for a retired filter brings the filter back.
func Admitted(spec config.Filter, st types.FilterState, d types.Digest, now time.Time) (types.FilterState, Decision) {
	if m, bad := badMark(st, d); bad {
		return st, Decision{Action: Ignored, Reason: fmt.Sprintf("%s is marked bad: %s", d.Short(), m.Reason)}
	}
	if st.Filter == "" {
		st.Filter = spec.Name
	}
	retired := st.Retired
	st.Retired = false
	switch {
	case d == st.Candidate && !retired:
		return st, Decision{Action: Unchanged, Reason: fmt.Sprintf("%s is already the candidate", d.Short())}
	case d == st.Stable && st.Candidate == "" && !retired:
		return st, Decision{Action: Unchanged, Reason: fmt.Sprintf("%s is already stable", d.Short())}
	case d == st.Stable:
		reason := "filter restored"
		if st.Candidate != "" {
			reason = fmt.Sprintf("the source returned to stable; candidate %s withdrawn", st.Candidate.Short())
		}
		return clearCandidate(st), Decision{Action: Stable, Reason: reason}
	}
	reason := fmt.Sprintf("rolling out at %d%%", startPercent(spec))
	if st.Candidate != "" {
		reason += fmt.Sprintf("; candidate %s replaced", st.Candidate.Short())
	}
	st.Candidate, st.Step, st.StepSince, st.Paused = d, 0, now, false
	return st, Decision{Action: Candidate, Reason: reason}
}

// startPercent is the percent a new candidate starts at (step 0).
func startPercent(spec config.Filter) int {
	return CurrentPercent(spec, types.FilterState{})
}

// Advance moves a candidate on at time now. It returns the next state, when
// Advance should be called again (zero when nothing is scheduled), and
// whether the state changed.
//
// Once the current step has been held for Spec.Rollout.Interval (NextStepAt)
// the candidate moves to the next step, which is then held from now on (not
// from when it was due: a control plane that was down does not skip steps).
//
// Advance never promotes. At 100% every node runs the candidate and it waits
// for Confirmed; below 100% with no further step it waits for an operator's
// Promote.
func Advance(spec config.Filter, st types.FilterState, now time.Time) (types.FilterState, time.Time, bool) {
	due := NextStepAt(spec, st)
	if due.IsZero() || now.Before(due) {
		return st, due, false
	}
	st.Step, st.StepSince = min(max(st.Step, 0), len(spec.Rollout.Steps)-1)+1, now
	return st, NextStepAt(spec, st), true
}

// NextStepAt returns when the candidate is due to move to its next step: the
// current step's start plus Spec.Rollout.Interval. It is zero, nothing being
// scheduled, when there is no candidate, the rollout is paused, the
// candidate is at 100% (the step of 100, or no steps and percent 100) or
// there is no further step (no steps below 100, or a last step below 100 in
// a spec that was not validated).
func NextStepAt(spec config.Filter, st types.FilterState) time.Time {
	steps := spec.Rollout.Steps
	if st.Candidate == "" || st.Paused || CurrentPercent(spec, st) == 100 || len(steps) == 0 || max(st.Step, 0) >= len(steps)-1 {
		return time.Time{}
	}
	return st.StepSince.Add(time.Duration(spec.Rollout.Interval))
}

// Confirmed returns the state after every connected node has ACKed version
// d of the filter. When d is the candidate, the candidate is at 100%
// (CurrentPercent) and the rollout is not paused, the candidate becomes the
// stable version and Confirmed reports true; otherwise nothing changes.
//
// This is the only way a candidate is promoted without an operator. ACKs
// below 100% prove nothing about the nodes that do not run the candidate,
// and a paused rollout is held by an operator, who may still Rollback; the
// controller calls Confirmed again when either changes. With no node
// connected nothing is confirmed: the candidate stays at 100%, every node
// that connects gets it, and it is promoted once those nodes ACK it.
func Confirmed(spec config.Filter, st types.FilterState, d types.Digest) (types.FilterState, bool) {
	if st.Candidate == "" || d != st.Candidate || st.Paused || CurrentPercent(spec, st) != 100 {
		return st, false
	}
	return promote(st), true
}

// Failed records that mark.Node failed to load mark.Digest (a NACK or a
// failed remote fetch) and that failedNodes distinct nodes have failed on it
// so far. When mark.Digest is the candidate and failedNodes exceeds
// Spec.Rollout.MaxFailedNodes, the candidate is marked bad with mark and
// dropped, so every node returns to stable, and Failed reports true; for the
// very first version of a filter (no stable yet) the filter is absent on
// every node again. This holds at any percent, 100 included, because a new
// version stays the candidate until Confirmed or Promote. A failure of any
// other digest (the stable version, an old candidate) changes nothing.
func Failed(spec config.Filter, st types.FilterState, mark types.BadMark, failedNodes int) (types.FilterState, bool) {
	if st.Candidate == "" || mark.Digest != st.Candidate || failedNodes <= spec.Rollout.MaxFailedNodes {
		return st, false
	}
	return markBad(clearCandidate(st), mark), true
}

// Removed returns the state after the filter's module vanished from its
// source: the filter is retired and any candidate dropped. The stable version
// is kept in the state, so Plan keeps serving it for a Required filter and a
// later Admitted of it brings the filter back.
func Removed(st types.FilterState) types.FilterState {
	st = clearCandidate(st)
	st.Retired = true
	return st
}

// promote makes the candidate the stable version.
func promote(st types.FilterState) types.FilterState {
	st.Stable = st.Candidate
	return clearCandidate(st)
}

// clearCandidate drops the candidate and everything about its progress.
func clearCandidate(st types.FilterState) types.FilterState {
	st.Candidate, st.Step, st.StepSince, st.Paused = "", 0, time.Time{}, false
	return st
}

// badMark returns d's mark, if d is marked bad.
func badMark(st types.FilterState, d types.Digest) (types.BadMark, bool) {
	i := slices.IndexFunc(st.Bad, func(m types.BadMark) bool { return m.Digest == d })
	if i < 0 {
		return types.BadMark{}, false
	}
	return st.Bad[i], true
}

// markBad adds m to st.Bad, replacing an earlier mark of the same digest.
func markBad(st types.FilterState, m types.BadMark) types.FilterState {
	st.Bad = append(withoutMark(st.Bad, m.Digest), m)
	return st
}

// withoutMark returns a new slice of the marks that are not d's (nil when
// none is left); bad itself is not modified, as callers share it.
func withoutMark(bad []types.BadMark, d types.Digest) []types.BadMark {
	var out []types.BadMark
	for _, m := range bad {
		if m.Digest != d {
			out = append(out, m)
		}
	}
	return out
}
