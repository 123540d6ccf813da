// Package ads is an ADS client that subscribes the way Envoy does: clusters
// and listeners as wildcards first, then the route configurations and
// extension configs the listeners name. It speaks state of the world
// (StreamAggregatedResources) or, with Config.Delta, delta xDS
// (DeltaAggregatedResources) as Envoy's delta gRPC mux does. It ACKs what
// its handler accepts, NACKs with the handler's reason while keeping the
// last accepted versions, and after a dropped stream reconnects with a
// jittered, capped backoff, re-sending the names it wants and the versions
// it holds.
//
// Handlers see state-of-the-world responses under both protocols (the
// client turns a delta response into one, see Handler), so a data plane
// applies configuration along one path whichever protocol carried it.
//
// The stand-in data plane and the fleet load generator both use it, so both
// talk to the control plane exactly like each other.
package ads
