// Package ociartifact reads and writes proxy-wasm modules in OCI registries,
// so that `wasmfleet push`, the control plane's registry source and the
// signature verifier agree on one definition of what a module artifact is.
//
// Two layouts are read, the ones Istio and Envoy Gateway accept:
//
//   - the Wasm OCI artifact ("compat" in Istio's words): one layer of media
//     type application/vnd.module.wasm.content.layer.v1+wasm holding the
//     module bytes as they are, with a config of media type
//     application/vnd.module.wasm.config.v1+json;
//   - a single-layer container image whose tar+gzip layer holds plugin.wasm
//     at its root.
//
// Push writes only the first (the spec'd artifact, which oras and crane
// read). Manifest annotations carry the filter's build manifest
// (org.opencontainers.image.title and .version plus dev.wasmfleet.* keys).
//
// Everything read from a registry is bounded before it is read: a manifest
// is refused by the size its HEAD reports and its body is cut off past
// MaxManifestBytes, and a layer is refused by the size its descriptor claims
// and read no further than that. Digests are checked on every byte read.
//
// Signatures attached by cosign (the sha256-HEX.sig tag) are fetched here as
// raw payloads; checking them is package controlplane/signature's job.
//
// Registry access goes through go-containerregistry; plain HTTP is refused
// unless Remote.Insecure allows it, even for loopback registries, which
// go-containerregistry would otherwise reach over HTTP silently.
package ociartifact
