// Package envoyproc runs a real Envoy process as a dataplane.Node, for
// machines that have an envoy binary (on PATH, or named by $WASMFLEET_ENVOY).
//
// It writes a bootstrap from a template (node identity, ADS to the control
// plane, admin on loopback), starts Envoy with it, and reads back what
// Envoy accepted and rejected from the admin endpoints /config_dump and
// /stats, the listeners' bound addresses from /listeners, and the Wasm log
// lines from Envoy's log output. Everything it reads is documented Envoy
// admin output; the parsers are tested on hand-written samples of it, since
// no Envoy runs where this project is built.
package envoyproc
