package signature

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

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

// SignArtifactBundle returns the Sigstore bundle `cosign sign --key
// --new-bundle-format --tlog-upload=false` attaches, as an OCI 1.1
// referrer, for the digest ("sha256:HEX") of an artifact in repository
// ("registry/repo"): a DSSE envelope over an in-toto statement naming the
// digest. Attach it with ociartifact.PushSigstoreBundle.
func (s *Signer) SignArtifactBundle(repository, digest string) ([]byte, error) {
	return s.SignStatementBundle(repository, digest, ociartifact.CosignSignPredicate)
}

// SignStatementBundle is SignArtifactBundle with another predicate type:
// what `cosign attest --new-bundle-format` writes with an empty predicate,
// an attestation about the artifact, which Verify does not take for a
// signature.
func (s *Signer) SignStatementBundle(repository, digest, predicateType string) ([]byte, error) {
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return nil, fmt.Errorf("signature: %s is not a sha256 digest", digest)
	}
	payload, err := json.Marshal(inTotoStatement{
		Type:          inTotoStatementType,
		Subject:       []inTotoSubject{{Name: repository, Digest: map[string]string{"sha256": hexDigest}}},
		PredicateType: predicateType,
		Predicate:     json.RawMessage(`{}`),
	})
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	sig, err := s.s.SignMessage(bytes.NewReader(pae(InTotoPayloadType, payload)))
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return s.sigstoreBundle(sigstoreBundle{DSSEEnvelope: &dsseEnvelope{
		Payload: base64.StdEncoding.EncodeToString(payload), PayloadType: InTotoPayloadType,
		Signatures: []dsseSignature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	}})
}

// SignBlobBundle returns what `cosign sign-blob --key --bundle FILE`
// writes: with sigstore, the Sigstore bundle (--new-bundle-format);
// without, cosign 2's default bundle (base64Signature and no Rekor entry,
// as with --tlog-upload=false).
func (s *Signer) SignBlobBundle(module []byte, sigstore bool) ([]byte, error) {
	sig, err := s.s.SignMessage(bytes.NewReader(module))
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if !sigstore {
		return json.Marshal(legacyBlobBundle{Base64Signature: base64.StdEncoding.EncodeToString(sig)})
	}
	sum := sha256.Sum256(module)
	ms := &messageSignature{Signature: base64.StdEncoding.EncodeToString(sig)}
	ms.MessageDigest.Algorithm = "SHA2_256"
	ms.MessageDigest.Digest = base64.StdEncoding.EncodeToString(sum[:])
	return s.sigstoreBundle(sigstoreBundle{MessageSignature: ms})
}

// sigstoreBundle completes b as cosign does for a key pair: the bundle
// media type and, as the verification material, a hint naming the public
// key (base64 of the SHA-256 of its DER form).
func (s *Signer) sigstoreBundle(b sigstoreBundle) ([]byte, error) {
	pub, err := s.s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	hint := sha256.Sum256(der)
	b.MediaType = ociartifact.SigstoreBundleMediaType
	b.VerificationMaterial = &verificationMaterial{
		PublicKey:   &publicKeyHint{Hint: base64.StdEncoding.EncodeToString(hint[:])},
		TlogEntries: []json.RawMessage{},
	}
	return json.Marshal(b)
}
