package signature

import (
	"bytes"
	"encoding/json"
	"fmt"

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
	// Manifest is the artifact's manifest as the registry served it; the
	// signatures name its sha256.
	Manifest []byte `json:"manifest"`
	// Layer is the compressed layer of an image-layout artifact (the
	// module was extracted from it); empty for the Wasm artifact, whose
	// layer is the module.
	Layer []byte `json:"layer,omitempty"`
	// Signatures are the layers of the sha256-HEX.sig signature image.
	Signatures []ociartifact.CosignSignature `json:"signatures"`
}

// Marshal encodes b with its media type set.
func (b Bundle) Marshal() ([]byte, error) {
	b.MediaType = BundleMediaType
	return json.Marshal(b)
}

// IsBundle reports whether sig is a Bundle rather than a detached signature.
func IsBundle(sig []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(sig), []byte("{"))
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
