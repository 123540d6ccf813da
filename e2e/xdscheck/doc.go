// Package xdscheck replays a recorded xDS stream in arrival order and reports
// every moment at which a route enables a filter slot that does not hold the
// filter it should: a slot holding the HeaderMutation no-op or nothing, a
// canary slot whose candidate the node NACKed, or a route whose slots run a
// filter twice, skip one, or run them in an order the test did not allow.
//
// Envoy applies each xDS type on its own, in the order responses arrive, and
// go-control-plane's ADS cache answers RDS before ECDS (FACTS.md, "xDS ordering
// and ECDS"), so one snapshot that changes both can let a route enable a slot
// before the config it needs is there. The checker finds those moments in a
// recording of what one node saw:
//
//	control plane --ADS--> Recorder (a fake Envoy: ACK/NACK, no Wasm) --> []Event
//	                                                                        |
//	                                   Check(events, Options) <-------------+
//	                                     replays the events into a model of
//	                                     Envoy and, after every response,
//	                                     checks every route of every serving
//	                                     listener -> []Violation
//
// The model follows Envoy where it matters here:
//   - LDS and CDS responses replace the whole set; RDS and ECDS resources
//     missing from a response keep their last config (state of the world).
//   - A listener serves only once its route configuration and every
//     config_discovery filter have had a first response (applied or
//     rejected); while it warms nothing is checked. An updated listener warms
//     beside the one serving and replaces it when ready.
//   - ECDS resources apply in response order and the first one that fails
//     stops the rest of the response; a config identical to the last one
//     received for that name is skipped (ACKed without being built) even if
//     that one failed; a config that fails to build is still recorded as the
//     last received (FilterConfigSubscription::onConfigUpdate), one that fails
//     validation is not.
//   - A rejected RDS, LDS or CDS response applies nothing.
//
// What it does not model: initial_fetch_timeout (a listener warming for more
// than 15 s without its configs), remote code fetches, drains, and anything
// about traffic (runtime_fraction routes are checked like any other route:
// each serves some requests).
//
// The Recorder decides ACK or NACK the way Envoy would with a load-failure
// predicate chosen by the test (FailCode, FailPlugin), and records which ECDS
// resource stopped a NACKed response (Event.Rejected), so a recording replays
// without the predicate. Recordings built by hand must set Rejected on every
// NACKed ECDS event; Check refuses a recording whose answers do not follow
// from Envoy's rules.
package xdscheck
