package rollout

import (
	"errors"
	"fmt"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Sentinel errors of the operator commands, for errors.Is.
var (
	ErrNoCandidate = errors.New("no candidate is rolling out")
	ErrPaused      = errors.New("rollout is already paused")
	ErrNotPaused   = errors.New("rollout is not paused")
	ErrNotBad      = errors.New("version is not marked bad")
)

// The operator commands take the filter's spec and state and the time the
// command is given, and return the next state, or st unchanged and an error
// saying why the command makes no sense now. Like the other transitions they
// are pure.

// Promote makes the candidate the stable version now, whatever its step,
// percent or pause. It is how a rollout held below 100% ends, and at 100% it
// skips waiting for Confirmed; after it a NACK of the version no longer has a
// previous stable version to return to.
func Promote(spec config.Filter, st types.FilterState, _ time.Time) (types.FilterState, error) {
	if st.Candidate == "" {
		return st, commandErr(spec, "promote", ErrNoCandidate)
	}
	return promote(st), nil
}

// Pause stops the candidate's steps from advancing and, at 100%, from being
// Confirmed; nodes keep what they run. Failures still roll the candidate back
// while it is paused.
func Pause(spec config.Filter, st types.FilterState, _ time.Time) (types.FilterState, error) {
	switch {
	case st.Candidate == "":
		return st, commandErr(spec, "pause", ErrNoCandidate)
	case st.Paused:
		return st, commandErr(spec, "pause", ErrPaused)
	}
	st.Paused = true
	return st, nil
}

// Resume lets a paused rollout advance again. The current step is held for a
// full interval from now, so the candidate is watched at this share for that
// long after the pause before it grows.
func Resume(spec config.Filter, st types.FilterState, now time.Time) (types.FilterState, error) {
	switch {
	case st.Candidate == "":
		return st, commandErr(spec, "resume", ErrNoCandidate)
	case !st.Paused:
		return st, commandErr(spec, "resume", ErrNotPaused)
	}
	st.Paused, st.StepSince = false, now
	return st, nil
}

// Rollback drops the candidate and marks it bad, with reason and now, so it
// is not rolled out again until ClearBad; every node returns to stable.
func Rollback(spec config.Filter, st types.FilterState, now time.Time, reason string) (types.FilterState, error) {
	if st.Candidate == "" {
		return st, commandErr(spec, "rollback", ErrNoCandidate)
	}
	if reason == "" {
		reason = "rolled back by an operator"
	}
	mark := types.BadMark{Digest: st.Candidate, Reason: reason, At: now}
	return markBad(clearCandidate(st), mark), nil
}

// ClearBad allows version d again. It does not roll d out by itself: the
// next time d is admitted (the source still or again points at it) it
// becomes the candidate as any new version would.
func ClearBad(st types.FilterState, d types.Digest) (types.FilterState, error) {
	if _, bad := badMark(st, d); !bad {
		return st, fmt.Errorf("rollout: %s: clear bad mark of %s: %w", st.Filter, d.Short(), ErrNotBad)
	}
	st.Bad = withoutMark(st.Bad, d)
	return st, nil
}

func commandErr(spec config.Filter, cmd string, err error) error {
	return fmt.Errorf("rollout: %s: %s: %w", spec.Name, cmd, err)
}
