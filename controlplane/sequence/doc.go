// Package sequence is the stage between the rollout planner and the snapshot
// builder that makes every change to a managed node make-before-break.
//
// Envoy applies each xDS type on its own, in the order go-control-plane sends
// them (RDS before ECDS), so a snapshot that changes both would let a route
// enable a filter slot before the slot's new config has arrived and loaded:
// for that moment the filter is simply absent (an auth bypass), or runs twice
// or out of order during a reorder. The sequencer keeps, per node, what the
// node has confirmed (the ECDS config it ACKed in each slot, the routes it may
// be running) and hands the builder a Layout that only ever lets a route
// enable a slot the node has ACKed with the config that route expects:
//
//   - enabling (a new filter, a request split, a move to another slot): ECDS
//     first, then, once the node ACKed it, the RDS that uses it;
//   - disabling (a filter removed, a split ended, a slot left): RDS first,
//     then the slot is cleared once the node ACKed the routes that no longer
//     use it;
//   - a reorder goes through free slot pairs: the new positions are filled,
//     ACKed, the routes flip in one RDS update, and the old positions are
//     cleared after that, so each route runs each filter exactly once, in
//     the old order or the new one;
//   - a slot that a route may be enabling only ever gets another version or
//     configuration of the same filter (an in-place swap, which Envoy keeps
//     the old one for if it fails to load);
//   - a config the node NACKed never counts as loaded, even when Envoy later
//     ACKs its identical re-send without loading it.
//
// What a node runs is read back from the version strings it reports (the
// builder encodes each layout in its RDS and ECDS versions, and a delta node
// reports each resource's version, which carries its part), so a restarted
// control plane, or another replica, knows a reconnecting node's routes and
// slots without having stored anything.
//
// A Sequencer is owned by one goroutine (the controller's loop); it does no
// I/O and reads no clock.
package sequence
