// Package rollout decides which version of each filter every node runs, and
// how a filter's rollout state moves when versions are admitted, steps come
// due, nodes fail to load a candidate, or an operator steps in.
//
// Everything here is a pure function of its arguments: no clock (callers pass
// now), no I/O, no goroutines, no randomness. Two control-plane replicas given
// the same config, the same stored FilterState and the same connected nodes
// therefore serve the same versions, and a restarted control plane serves
// exactly what it served before. The controller that owns the clock, the store
// and the timers calls in here and persists what comes back.
//
// Three parts:
//
//   - Bucket places a node on a 0..9999 scale per filter. The hash is part of
//     the fleet's state: changing it would reshuffle which nodes run a
//     candidate in the middle of a live rollout, so golden tests pin it.
//   - Plan maps (filter specs, filter states, nodes) to a types.Assignment per
//     node; Diff lists what a new plan would change, for `wasmfleet rollout plan`.
//   - Admitted, Advance, Confirmed, Failed, Removed, the operator commands
//     (Promote, Pause, Resume, Rollback, ClearBad) are the state transitions.
//
// A new version can always be rolled back by a NACK. Admitted makes every
// new version the candidate, even under the default rollout (percent 100, no
// steps), which sends it to every node at once but keeps the previous stable
// version. Advance moves a candidate through its steps and stops at 100%
// without promoting it. Only Confirmed, called once every connected node has
// ACKed the candidate at 100%, or an operator's Promote makes it stable.
// Until then Failed (a NACK beyond Spec.Rollout.MaxFailedNodes) marks it bad
// and every node returns to the previous stable version, or, for a filter's
// first version, the filter is absent again.
package rollout
