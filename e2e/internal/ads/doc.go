// Package ads is a state-of-the-world ADS client that subscribes the way
// Envoy does: clusters and listeners as wildcards first, then the route
// configurations and extension configs the listeners name. It ACKs what its
// handler accepts, NACKs with the handler's reason while keeping the last
// accepted version, and after a dropped stream reconnects with a jittered,
// capped backoff, re-sending the versions and names it holds.
//
// The stand-in data plane and the fleet load generator both use it, so both
// talk to the control plane exactly like each other.
package ads
