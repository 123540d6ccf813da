// Package signature checks that a module was signed by a trusted key before
// admission lets it reach the fleet, in the formats Sigstore's cosign writes
// with a key pair, so that operators sign with the tool they already use:
//
//   - a file in the watched directory: NAME.wasm.sig beside it holding what
//     `cosign sign-blob --key` prints (base64 of the signature over the
//     file's bytes; ECDSA P-256 with SHA-256 for cosign's default keys), or
//     the file `cosign sign-blob --key --bundle` writes, in cosign 2's
//     format (base64Signature) or as a Sigstore bundle
//     (--new-bundle-format: a message signature and the module's sha256);
//   - a registry artifact: the signature image cosign attaches to the
//     manifest digest (tag sha256-HEX.sig), whose layers are simple-signing
//     payloads naming the digest, each with its base64 signature in the
//     dev.cosignproject.cosign/signature annotation;
//   - a registry artifact signed with `cosign sign --new-bundle-format`: a
//     Sigstore bundle attached as an OCI 1.1 referrer, a DSSE envelope over
//     an in-toto statement of predicate https://sigstore.dev/cosign/sign/v1
//     whose subject is the digest. Attestations (other predicates) by a
//     trusted key are not signatures.
//
// Either registry form may live in another repository (COSIGN_REPOSITORY).
// The registry source hands them to admission as a Bundle in
// Event.Signature: the signatures plus the artifact's index (if the tag
// named one), manifest and, for an image, its layer, so the verifier itself
// checks the whole chain: key -> payload -> signed digest -> (index ->)
// manifest -> layer digest -> the module bytes admitted.
//
// Keys are PEM public keys (cosign.pub). Key handling comes from
// github.com/sigstore/sigstore (v1.9.5, the newest release that builds with
// our Go); the Sigstore bundle's JSON and DSSE's encoding are read here
// (sigstore-go is not among the modules this project can use). Rekor
// transparency-log entries in a bundle are carried but not checked, and
// keyless signatures (a Fulcio certificate instead of a trusted key) are
// refused as not verifying: trust is the configured keys.
//
// Policy: a filter whose settings say require_signature (or every filter,
// with Config.RequireAll) is refused without a valid signature; a module that
// comes with a signature is refused if it does not verify, required or not,
// since a bad signature means tampering or a wrong key.
package signature
