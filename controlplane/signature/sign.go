package signature

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	sigs "github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// Signer produces signatures exactly as cosign does with a key pair, for
// tests and tools of ours. Safe for concurrent use.
type Signer struct {
	s sigs.Signer
}

// NewSigner signs with priv (ECDSA P-256 is cosign's default) and SHA-256.
func NewSigner(priv crypto.PrivateKey) (*Signer, error) {
	s, err := sigs.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return &Signer{s: s}, nil
}

// SignBlob returns what `cosign sign-blob --key` writes for module: the
// base64 signature over its bytes, the content of NAME.wasm.sig.
func (s *Signer) SignBlob(module []byte) ([]byte, error) {
	sig, err := s.s.SignMessage(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// SignArtifact returns what `cosign sign --key` attaches for the manifest
// digest ("sha256:HEX") of an artifact in repository ("registry/repo"): a
// simple-signing payload naming the digest, and its signature. Attach it
// with ociartifact.PushSignatures.
func (s *Signer) SignArtifact(repository, manifestDigest string) (ociartifact.CosignSignature, error) {
	d, err := name.NewDigest(repository + "@" + manifestDigest)
	if err != nil {
		return ociartifact.CosignSignature{}, fmt.Errorf("signature: %w", err)
	}
	p, err := json.Marshal(payload.Cosign{Image: d})
	if err != nil {
		return ociartifact.CosignSignature{}, fmt.Errorf("signature: %w", err)
	}
	sig, err := s.s.SignMessage(bytes.NewReader(p))
	if err != nil {
		return ociartifact.CosignSignature{}, fmt.Errorf("signature: %w", err)
	}
	return ociartifact.CosignSignature{Payload: p, Signature: base64.StdEncoding.EncodeToString(sig)}, nil
}
