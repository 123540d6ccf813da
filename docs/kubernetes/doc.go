// Package kubernetes is the Kubernetes manifests in this directory and the
// test that checks them without a cluster. It has no code of its own.
//
// A Go package lives under docs/ because manifests that nobody applies in
// CI rot silently: a field renamed in a Kubernetes release, a Service
// selector that no longer matches its pods or a wasmfleet.yaml field that
// went away all still look fine in a review. The test decodes every
// document strictly into its k8s.io/api type, validates it against the
// Kubernetes OpenAPI schema of its kind, checks what neither can (names
// that refer to each other, ports, the Service DNS name in the Envoy
// bootstrap) and parses the embedded wasmfleet.yaml and Envoy bootstrap
// with the project's own loaders, so `go test` fails before a cluster
// would.
package kubernetes
