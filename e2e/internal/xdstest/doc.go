// Package xdstest serves hand-built xDS snapshots from a real go-control-plane
// ADS server on a loopback port, for tests of the stand-in and the load
// generator. Its resource builders follow docs/xds-resources.md (filter slots
// in LDS, Wasm or no-op configs in ECDS, slot-enabling routes in RDS), so a
// test reads like the resources wasmfleet's control plane sends.
package xdstest
