// Package fleet is the registry of who runs what: every connected Envoy node,
// its identity, its open xDS streams, and per resource type what was sent,
// acknowledged and rejected.
//
// The xDS server feeds it from go-control-plane's callbacks, and the control
// plane tells it which assignment each ECDS version carried, so an ACK or a
// NACK resolves to filters and module digests: "node n1: auth acked 3f2a…,
// transform NACKed 9c1b…: <reason>". Rollouts subscribe to its events to
// promote or roll back; the admin API reads its status.
//
// It times every push, from the first response that carries a new version
// of a type to the node's answer, for the response-time metric and the
// status. Node ids churn (each new pod is a new node), so what it remembers
// of a node that left is dropped after a retention period, and versions a
// node has moved past are dropped as soon as it ACKs a newer one.
//
// It never blocks the xDS server: callbacks take one short lock, and events
// are queued per subscriber (see Registry.Subscribe).
package fleet
