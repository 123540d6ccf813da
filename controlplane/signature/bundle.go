package signature

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// BundleMediaType marks a Bundle, so Verify tells it from a detached
// signature (base64 never starts with "{").
const BundleMediaType = "application/vnd.wasmfleet.cosign-bundle.v1+json"

// Bundle is what the registry source puts in Event.Signature for an
// artifact cosign signed: enough to check the chain from a trusted key to
// the module bytes without asking the registry again.
type Bundle struct {
	MediaType string `json:"mediaType"`
	// Index is the image index the reference named, if it named one; the
	// signatures then name its sha256, and it must pick Manifest.
	Index []byte `json:"index,omitempty"`
	// Manifest is the artifact's manifest as the registry served it; the
	// signatures name its sha256 when there is no Index.
	Manifest []byte `json:"manifest"`
	// Layer is the compressed layer of an image-layout artifact (the
	// module was extracted from it); empty for the Wasm artifact, whose
	// layer is the module.
	Layer []byte `json:"layer,omitempty"`
	// Signatures are the layers of the sha256-HEX.sig signature image.
	Signatures []ociartifact.CosignSignature `json:"signatures"`
	// Sigstore are the Sigstore bundles attached to the digest as OCI 1.1
	// referrers (`cosign sign --new-bundle-format`).
	Sigstore [][]byte `json:"sigstore,omitempty"`
}

// SignedDigest is the digest ("sha256:HEX") the signatures must name: the
// index's when there is one, else the manifest's.
func (b Bundle) SignedDigest() string {
	if b.Index != nil {
		return "sha256:" + string(types.DigestOf(b.Index))
	}
	return "sha256:" + string(types.DigestOf(b.Manifest))
}

// Marshal encodes b with its media type set.
func (b Bundle) Marshal() ([]byte, error) {
	b.MediaType = BundleMediaType
	return json.Marshal(b)
}

// isJSON reports whether sig is JSON (a Bundle, or a sign-blob bundle
// file) rather than a base64 detached signature, which never starts with "{".
func isJSON(sig []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(sig), []byte("{"))
}

// isBundle reports whether a JSON signature is a Bundle.
func isBundle(sig []byte) bool {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	return json.Unmarshal(sig, &probe) == nil && probe.MediaType == BundleMediaType
}

// ParseBundle decodes a Bundle.
func ParseBundle(raw []byte) (Bundle, error) {
	var b Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return Bundle{}, fmt.Errorf("%w: signature bundle: %w", ErrBadSignature, err)
	}
	if b.MediaType != BundleMediaType {
		return Bundle{}, fmt.Errorf("%w: signature bundle media type %q, want %s", ErrBadSignature, b.MediaType, BundleMediaType)
	}
	return b, nil
}
