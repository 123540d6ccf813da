// Package standin is a data-plane node that behaves like Envoy where
// wasmfleet's scenarios can tell the difference, for machines where no Envoy
// can be installed.
//
// It speaks ADS with Envoy's node identity and ACK/NACK rules, validates every
// resource with the Envoy API's own ValidateAll, warms and drains listeners,
// matches routes (prefix, runtime_fraction, per-route FilterConfig), fetches
// remote Wasm code through a cluster and checks its sha256, runs modules
// through the project's proxy-wasm host (controlplane/wasmhost), and proxies
// real HTTP through the filter chain to the upstream cluster.
//
// Where it is simpler than Envoy is listed in SIMPLIFICATIONS.md next to this
// file; read it before trusting a scenario's result for something it lists.
package standin
