// Package scenarios runs wasmfleet end to end: a real control plane
// (controlplane.New, in process), a fleet of data-plane nodes and a real
// upstream HTTP server, all on loopback, driven the way an operator drives
// them: by writing module files into the watched directory, editing a
// filter's NAME.yaml, restarting the control plane and reading its admin API.
//
// The scenarios are written against the data-plane driver interface
// (e2e/dataplane.Node), so the same tests run on the stand-in (e2e/standin,
// the default) and on real Envoy processes (e2e/envoyproc) where an envoy
// binary is available ($WASMFLEET_ENVOY or envoy on PATH).
//
// The package has no code outside its tests; this file exists to say why the
// package exists. The docker-compose checks (compose_test.go) live here too,
// because they test the same thing from the outside: that the shipped fleet
// configuration (docker-compose.yaml, envoy/compose/) fits together.
package scenarios
