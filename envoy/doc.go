// Package envoy holds the Envoy bootstrap files that point a real Envoy at
// wasmfleet (bootstrap.yaml for managed mode, bootstrap-mtls.yaml for managed mode
// over mutual TLS, bootstrap-ecds.yaml for people
// who keep their own listeners, compose/ for docker-compose), and
// LoadBootstrap, which parses them strictly into the Envoy bootstrap proto
// in tests, so a typo here fails CI rather than an Envoy.
package envoy
