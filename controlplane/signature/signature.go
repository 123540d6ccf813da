package signature

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigs "github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// Sentinels for errors.Is.
var (
	// ErrUnsigned: a signature is required and the module came with none.
	ErrUnsigned = errors.New("module is not signed")
	// ErrBadSignature: no signature verifies with any trusted key, or a
	// signature names other content than the module.
	ErrBadSignature = errors.New("no valid signature by a trusted key")
	// ErrNoKeys: Config lists no keys.
	ErrNoKeys = errors.New("no trusted keys")
	// ErrKey: a key file cannot be read or is not a PEM public key.
	ErrKey = errors.New("bad trusted key")
)

// Config says which keys are trusted and whether every module needs a
// signature.
type Config struct {
	// KeyFiles are PEM public keys (config trust.keys); at least one.
	KeyFiles []string
	// RequireAll requires a signature of every filter's modules, not only
	// of filters whose settings say require_signature.
	RequireAll bool
}

// verifier holds the loaded keys; it never changes after New, so Verify is
// safe for concurrent use.
type verifier struct {
	keys       []key
	requireAll bool
}

type key struct {
	path string
	v    sigs.Verifier
}

var _ admission.Verifier = (*verifier)(nil)

// ForTrust returns the verifier for a config's trust section, or nil when it
// trusts no key (then admission refuses only filters that require a signature).
func ForTrust(t config.Trust) (admission.Verifier, error) {
	if len(t.Keys) == 0 {
		return nil, nil
	}
	v, err := New(Config{KeyFiles: t.Keys, RequireAll: t.RequireSignature})
	if err != nil {
		return nil, fmt.Errorf("trust.keys: %w", err)
	}
	return v, nil
}

// New loads the keys and returns the Verifier admission calls. Every key
// problem is reported at once, each naming its file.
func New(cfg Config) (admission.Verifier, error) {
	if len(cfg.KeyFiles) == 0 {
		return nil, fmt.Errorf("signature: %w", ErrNoKeys)
	}
	v := &verifier{requireAll: cfg.RequireAll}
	var errs []error
	for _, path := range cfg.KeyFiles {
		k, err := loadKey(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature: %s: %w: %w", path, ErrKey, err))
			continue
		}
		v.keys = append(v.keys, key{path: path, v: k})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return v, nil
}

func loadKey(path string) (sigs.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, err
	}
	return sigs.LoadVerifier(pub, crypto.SHA256)
}

// Verify implements admission.Verifier. req.Signature is either a Bundle
// (from the registry source) or the content of NAME.wasm.sig.
func (v *verifier) Verify(_ context.Context, req admission.Request) error {
	raw := bytes.TrimSpace(req.Signature)
	if len(raw) == 0 {
		if v.requireAll || req.Settings.RequireSignature {
			return fmt.Errorf("%w: filter %s requires a signature (NAME.wasm.sig beside the file, or cosign's signature of the artifact)", ErrUnsigned, req.Filter)
		}
		return nil
	}
	switch {
	case isJSON(raw) && isBundle(raw):
		b, err := ParseBundle(raw)
		if err != nil {
			return err
		}
		return v.verifyBundle(b, req.Module)
	case isJSON(raw):
		return v.verifyBlobBundle(raw, req.Module)
	}
	return v.verifyBlob(raw, req.Module)
}

// verifyBlob checks a cosign sign-blob signature: base64 of the signature
// over the module's bytes.
func (v *verifier) verifyBlob(b64, module []byte) error {
	sig, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		return fmt.Errorf("%w: detached signature is not base64 (cosign sign-blob output): %w", ErrBadSignature, err)
	}
	if !v.anyKey(sig, module) {
		return fmt.Errorf("%w: the detached signature does not verify with %s", ErrBadSignature, v.keyNames())
	}
	return nil
}

// verifyBundle checks cosign's signatures of an artifact: some signature
// verifies with a trusted key, over a simple-signing payload (the .sig
// tag) or an in-toto statement (a Sigstore bundle) that names the signed
// digest, and that digest leads to the module (CheckModule).
func (v *verifier) verifyBundle(b Bundle, module []byte) error {
	if err := ociartifact.CheckModule(b.Index, b.Manifest, b.Layer, module); err != nil {
		return fmt.Errorf("%w: the signed artifact does not hold this module: %w", ErrBadSignature, err)
	}
	manifestDigest := b.SignedDigest()
	var why []string
	for i, raw := range b.Sigstore {
		err := v.verifyDSSE(raw, manifestDigest)
		if err == nil {
			return nil
		}
		why = append(why, fmt.Sprintf("Sigstore bundle %d %v", i+1, err))
	}
	for i, s := range b.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil {
			why = append(why, fmt.Sprintf("signature %d is not base64", i+1))
			continue
		}
		if !v.anyKey(sig, s.Payload) {
			why = append(why, fmt.Sprintf("signature %d does not verify with %s", i+1, v.keyNames()))
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			why = append(why, fmt.Sprintf("signature %d: payload is not simple-signing JSON", i+1))
			continue
		}
		if p.Critical.Type != payload.CosignSignatureType {
			why = append(why, fmt.Sprintf("signature %d: payload type %q", i+1, p.Critical.Type))
			continue
		}
		if got := p.Critical.Image.DockerManifestDigest; got != manifestDigest {
			why = append(why, fmt.Sprintf("signature %d signs %s, not the artifact %s", i+1, got, manifestDigest))
			continue
		}
		return nil
	}
	if len(why) == 0 {
		why = append(why, "no cosign signatures found (neither a .sig tag nor Sigstore bundle referrers)")
	}
	return fmt.Errorf("%w: %s", ErrBadSignature, strings.Join(why, "; "))
}

func (v *verifier) anyKey(sig, message []byte) bool {
	for _, k := range v.keys {
		if k.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(message)) == nil {
			return true
		}
	}
	return false
}

func (v *verifier) keyNames() string {
	names := make([]string, len(v.keys))
	for i, k := range v.keys {
		names[i] = k.path
	}
	return "trusted keys " + strings.Join(names, ", ")
}
