// Package oci is the registry source: it watches an oci:// reference and
// reports a new module whenever the reference's tag moves, as the watched
// directory source (package source) does when a file changes, on the same
// channel and with the same event contract.
//
// Each poll is a manifest HEAD of the tag (cheap: no body) and one of the
// cosign signature tag of the digest it points at. Only when either digest
// differs from what was last reported is anything downloaded: the manifest by
// digest, then the module layer, bounded and checked by package ociartifact.
// A reference pinned by digest is fetched once; only its signature tag is
// polled afterwards, so a signature added later with `cosign sign` still
// reaches admission.
//
// When the registry is unreachable, refuses credentials or the tag is gone,
// nothing is sent: the fleet keeps the last good version. The source retries
// with exponential backoff (capped), logs once when it enters such a state
// and once when it leaves it, and recovers by itself. An artifact that can
// never be a module (wrong media types, too large) is reported once as a
// SourceFailed event and not downloaded again until the tag moves.
package oci
