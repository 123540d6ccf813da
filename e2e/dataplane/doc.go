// Package dataplane is the interface e2e scenarios drive a data-plane node
// through, so that the same scenario runs against a real Envoy process
// (package envoyproc, where an envoy binary exists) and against the in-process
// stand-in (package standin, everywhere else).
//
// A scenario starts nodes, sends HTTP traffic to the addresses their
// listeners bound, and reads back what each node accepted or rejected over
// xDS, what its Wasm filters logged and how often a listener was drained.
package dataplane
