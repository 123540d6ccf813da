// Package ociartifact reads and writes proxy-wasm modules in OCI registries,
// so that `wasmfleet push`, the control plane's registry source and the
// signature verifier agree on one definition of what a module artifact is.
//
// It reads every layout Istio's and Envoy Gateway's image fetchers read
// (both are pkg/wasm/imagefetcher.go, on go-containerregistry), and takes
// the module from the same layer, so one tag means one module to all three:
//
//   - an image whose last layer is tar+gzip: the first regular file in it
//     whose base name is plugin.wasm (FormatImage);
//   - else, with two layers, the one of media type
//     application/vnd.module.wasm.content.layer.v1+wasm, the module as it
//     is (FormatWasm); wasmfleet also reads that layer alone, the form its
//     push wrote before;
//   - an image index: the linux/amd64 manifest (one without a platform
//     counts as linux/amd64), as go-containerregistry picks for them; else
//     the only manifest that is not a build attestation.
//
// Push writes FormatImage by default, the one layout all three read, built
// so that `oras pull` unpacks it to NAME/plugin.wasm and `crane export`
// gives a tar holding it; PushAs writes the one-layer Wasm artifact on
// request. Manifest annotations carry the filter's build manifest
// (org.opencontainers.image.title and .version plus dev.wasmfleet.* keys).
//
// Everything read from a registry is bounded before it is read: a manifest
// is refused by the size its HEAD (or its index) reports and its body is cut
// off past MaxManifestBytes, and a layer is refused by the size its
// descriptor claims and read no further than that. Digests are checked on
// every byte read; a blob whose bytes do not match is ErrDigestMismatch,
// an artifact to refuse, not a registry to retry.
//
// Signatures attached by cosign are fetched here as raw payloads: the
// sha256-HEX.sig image, and Sigstore bundles attached as OCI 1.1 referrers
// (the referrers API, or the tag schema fallback). The .sig image may live
// in another repository (COSIGN_REPOSITORY, see ParseRepository); cosign
// keeps bundle referrers beside the artifact. Checking them is package
// controlplane/signature's job.
//
// Registry access goes through go-containerregistry; plain HTTP is refused
// unless Remote.Insecure allows it, even for loopback registries, which
// go-containerregistry would otherwise reach over HTTP silently.
package ociartifact
