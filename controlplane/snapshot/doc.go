// Package snapshot turns a node's assignment (which module versions it runs)
// into the xDS resources Envoy receives, as a go-control-plane snapshot.
//
// The shapes are fixed by docs/xds-resources.md: in managed mode a listener's
// HTTP connection manager holds a fixed set of disabled filter slots that get
// their Wasm configuration from ECDS and are enabled per route by RDS, so a
// new module, a rollout step, a request split or a reordered chain changes
// ECDS and RDS only and never drains a listener. In ECDS-only mode only the
// filter configurations are served.
//
// Building is pure (no I/O, no clock): the same input gives the same
// resources and the same version strings, which are hashes of the content, so
// a restarted control plane re-serves what it served before and Envoy sees no
// change. Many nodes share an assignment, so results are memoised; the input
// all nodes share is hashed once per reconcile (Builder.For), and only the
// small per-node assignment is encoded per node.
package snapshot
