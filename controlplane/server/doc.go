// Package server is the xDS runner: go-control-plane's ADS server (state of
// the world and delta) and the separate per-type discovery services on one
// gRPC listener, serving whatever snapshots the control plane puts in the
// cache.
//
// Its callbacks are how the control plane learns what happened on the data
// plane: which nodes are connected, and which versions each accepted or
// rejected (and why). They feed the fleet registry and never block.
package server
