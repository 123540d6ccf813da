// Package oci is the registry source: it watches an oci:// reference and
// reports a new module whenever the reference's tag moves, as the watched
// directory source (package source) does when a file changes, on the same
// channel and with the same event contract.
//
// Each poll is a manifest HEAD of the tag (cheap: no body), one of the
// cosign signature tag of the digest it points at, and one listing of the
// digest's referrers (the OCI 1.1 referrers API, or the tag schema where
// the registry lacks it), where `cosign sign --new-bundle-format` attaches
// Sigstore bundles. .sig signatures are looked for in
// Config.SignatureRepository (COSIGN_REPOSITORY) when set; bundle referrers
// beside the artifact, where cosign puts them either way. Only when any of the three differs from
// what was last reported is anything downloaded: the manifest by digest
// (and, for an image index, the manifest it picks), then the module layer,
// bounded and checked by package ociartifact. A reference pinned by digest
// is fetched once; only its signatures are polled afterwards, so a
// signature added later with `cosign sign` still reaches admission.
//
// When the registry is unreachable or refuses credentials, nothing is
// sent: the fleet keeps the last good version. The source retries with
// exponential backoff (capped), logs once when it enters such a state and
// once when it leaves it, and recovers by itself. A deleted tag is gone,
// not down: the registry answered, so it is polled at the poll interval and
// a re-push is seen at once. An artifact that can never be a module (no
// layout Istio, Envoy Gateway or wasmfleet reads, too large, a digest that
// does not match its bytes, an index with no manifest to pick) is reported
// once as a SourceFailed event naming the reference and not downloaded
// again until the tag moves.
package oci
