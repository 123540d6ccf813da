// Package standin is a data-plane node that behaves like Envoy where
// wasmfleet's scenarios can tell the difference, for machines where no Envoy
// can be installed.
//
// It speaks ADS, state of the world or delta (Config.Delta), with Envoy's
// node identity and ACK/NACK rules, validates every resource with the Envoy
// API's own ValidateAll, warms and drains listeners, matches routes
// (prefix, runtime_fraction, per-route FilterConfig), fetches remote Wasm
// code through a cluster and checks its sha256, runs modules through the
// project's proxy-wasm host (controlplane/wasmhost), and proxies real HTTP
// through the filter chain to the upstream cluster.
//
// It also follows Envoy behaviours that surprise control planes
// (references to Envoy's source in SIMPLIFICATIONS.md):
//   - An ECDS resource remembers the last config it received, even one that
//     failed to build and was NACKed (FilterConfigSubscription::onConfigUpdate
//     compares the hash of typed_config with it). The identical re-send that
//     go-control-plane makes after a NACK is ACKed without being built, and
//     the previous filter keeps running.
//   - Each xDS response takes effect on its own; nothing waits for the other
//     types of the same snapshot. In an ECDS response the subscriptions are
//     visited newest first, and the first config that fails ends the
//     response: the ones visited before it stay, the ones after it apply
//     only when the control plane sends the response again.
//   - A rejected ECDS response (or initial_fetch_timeout) releases warming
//     listeners even when a slot has no config; a route that enables such a
//     slot answers 500 (Envoy's MissingConfigFilter).
//   - State of the world: an ECDS or RDS resource left out of a response
//     keeps its config. Delta: a removed ECDS resource leaves its slot with
//     no config (500 where a route enables it); a removed RDS resource
//     keeps serving.
//   - An HTTP callout's upstream failure reaches the guest as a response
//     (504 on timeout, 503 when the cluster cannot be reached), the async
//     client's router local reply; only a cluster the node does not know
//     fails the dispatch itself. So an auth filter that denies unless its
//     check answers 200 fails closed, as on Envoy.
//   - Uncached remote code in the first config of a slot holds its listener
//     in warming until the fetch ends; uncached remote code replacing a
//     filter on a serving listener is ACKed and never fetched, and the
//     filter is skipped whatever its failure_policy (CodeNotFetched).
//
// Where it is simpler than Envoy is listed in SIMPLIFICATIONS.md next to this
// file; read it before trusting a scenario's result for something it lists.
package standin
