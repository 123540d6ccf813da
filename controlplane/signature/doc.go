// Package signature checks that a module was signed by a trusted key before
// admission lets it reach the fleet, in the formats Sigstore's cosign writes
// with a key pair, so that operators sign with the tool they already use:
//
//   - a file in the watched directory: NAME.wasm.sig beside it, as
//     `cosign sign-blob --key` writes it (base64 of the signature over the
//     file's bytes; ECDSA P-256 with SHA-256 for cosign's default keys);
//   - a registry artifact: the signature image cosign attaches to the
//     manifest digest (tag sha256-HEX.sig), whose layers are simple-signing
//     payloads naming the digest, each with its base64 signature in the
//     dev.cosignproject.cosign/signature annotation.
//
// The registry source hands the second kind to admission as a Bundle in
// Event.Signature: the signatures plus the artifact's manifest (and, for an
// image, its layer), so the verifier itself checks the whole chain: key ->
// payload -> manifest digest -> layer digest -> the module bytes admitted.
//
// Keys are PEM public keys (cosign.pub). Signature formats and key handling
// come from github.com/sigstore/sigstore (v1.9.5, the newest release that
// builds with our Go); Rekor transparency-log entries and keyless
// (Fulcio certificate) signatures are not checked.
//
// Policy: a filter whose settings say require_signature (or every filter,
// with Config.RequireAll) is refused without a valid signature; a module that
// comes with a signature is refused if it does not verify, required or not,
// since a bad signature means tampering or a wrong key.
package signature
