package signature_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/signature/sigtest"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const repo = "reg.example/filters/auth"

// artifactManifest is a Wasm artifact manifest whose layer is module.
func artifactManifest(t testing.TB, module []byte) []byte {
	t.Helper()
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: ggcrtypes.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: ociartifact.ConfigMediaType, Size: 2, Digest: v1.Hash{Algorithm: "sha256", Hex: string(types.DigestOf([]byte("{}")))}},
		Layers: []v1.Descriptor{{MediaType: ociartifact.LayerMediaType, Size: int64(len(module)), Digest: v1.Hash{Algorithm: "sha256", Hex: string(types.DigestOf(module))}}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bundle signs manifest's digest with each key and returns the Bundle the
// registry source would build.
func bundle(t testing.TB, manifest []byte, keys ...sigtest.Key) []byte {
	t.Helper()
	b := signature.Bundle{Manifest: manifest}
	for _, k := range keys {
		s, err := k.SignArtifact(repo, "sha256:"+string(types.DigestOf(manifest)))
		if err != nil {
			t.Fatal(err)
		}
		b.Signatures = append(b.Signatures, s)
	}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerify(t *testing.T) {
	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	other := append([]byte(nil), module...)
	other[len(other)-1] ^= 1
	trusted, second, stranger := sigtest.NewKey(t), sigtest.NewKey(t), sigtest.NewKey(t)
	blob := func(k sigtest.Key, b []byte) []byte {
		sig, err := k.SignBlob(b)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	manifest := artifactManifest(t, module)
	otherManifest := artifactManifest(t, other)
	// A payload that names another artifact, signed by a trusted key.
	misnamed := func() []byte {
		s, err := trusted.SignArtifact(repo, "sha256:"+string(types.DigestOf(otherManifest)))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := signature.Bundle{Manifest: manifest, Signatures: []ociartifact.CosignSignature{s}}.Marshal()
		return raw
	}()
	// Sigstore bundles, as cosign sign --new-bundle-format attaches them.
	sigstoreOf := func(k sigtest.Key, digest string) []byte {
		b, err := k.SignArtifactBundle(repo, digest)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	manifestDigest := "sha256:" + string(types.DigestOf(manifest))
	withSigstore := func(bundles ...[]byte) []byte {
		raw, err := signature.Bundle{Manifest: manifest, Sigstore: bundles}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// An attestation by the trusted key: a DSSE statement of another
	// predicate type over the same digest.
	attestation, err := trusted.SignStatementBundle(repo, manifestDigest, "https://slsa.dev/provenance/v1")
	if err != nil {
		t.Fatal(err)
	}
	blobBundle := func(k sigtest.Key, b []byte, sigstore bool) []byte {
		raw, err := k.SignBlobBundle(b, sigstore)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// A sign-blob Sigstore bundle whose message digest names other bytes
	// while its signature is over the module.
	digestSwapped := func() []byte {
		var b map[string]any
		if err := json.Unmarshal(blobBundle(trusted, module, true), &b); err != nil {
			t.Fatal(err)
		}
		other := types.DigestOf(other)
		b["messageSignature"].(map[string]any)["messageDigest"].(map[string]any)["digest"] = hexToBase64(t, string(other))
		raw, _ := json.Marshal(b)
		return raw
	}()
	required := config.Filter{RequireSignature: true}
	tests := []struct {
		name       string
		requireAll bool
		settings   config.Filter
		sig        []byte
		wantErr    error
		wantMsg    string
	}{
		{name: "detached, valid", sig: blob(trusted, module), settings: required},
		{name: "detached, second trusted key", sig: blob(second, module), settings: required},
		{name: "detached with trailing newline", sig: append(blob(trusted, module), '\n'), settings: required},
		{name: "detached, other bytes signed", sig: blob(trusted, other), settings: required, wantErr: signature.ErrBadSignature, wantMsg: "does not verify"},
		{name: "detached, wrong key", sig: blob(stranger, module), settings: required, wantErr: signature.ErrBadSignature},
		{name: "detached, wrong key, not required", sig: blob(stranger, module), wantErr: signature.ErrBadSignature},
		{name: "detached, not base64", sig: []byte("not base64!"), wantErr: signature.ErrBadSignature, wantMsg: "not base64"},
		{name: "missing, required", settings: required, wantErr: signature.ErrUnsigned, wantMsg: "filter auth requires a signature"},
		{name: "missing, required globally", requireAll: true, wantErr: signature.ErrUnsigned},
		{name: "missing, not required"},
		{name: "oci, valid", sig: bundle(t, manifest, trusted), settings: required},
		{name: "oci, one of two signatures trusted", sig: bundle(t, manifest, stranger, second), settings: required},
		{name: "oci, wrong key", sig: bundle(t, manifest, stranger), settings: required, wantErr: signature.ErrBadSignature, wantMsg: "signature 1 does not verify"},
		{name: "oci, manifest of other bytes", sig: bundle(t, otherManifest, trusted), settings: required, wantErr: signature.ErrBadSignature, wantMsg: "does not hold this module"},
		{name: "oci, payload names another digest", sig: misnamed, settings: required, wantErr: signature.ErrBadSignature, wantMsg: "signs sha256:"},
		{name: "oci, no signatures", sig: bundle(t, manifest), settings: required, wantErr: signature.ErrBadSignature, wantMsg: "no cosign signatures"},
		{name: "json of no known kind", sig: []byte(`{"mediaType":"x"}`), wantErr: signature.ErrBadSignature, wantMsg: "neither a Sigstore bundle"},
		{name: "sigstore referrer, valid", sig: withSigstore(sigstoreOf(trusted, manifestDigest)), settings: required},
		{name: "sigstore referrer beside a stranger's", sig: withSigstore(sigstoreOf(stranger, manifestDigest), sigstoreOf(second, manifestDigest)), settings: required},
		{name: "sigstore referrer, wrong key", sig: withSigstore(sigstoreOf(stranger, manifestDigest)), settings: required,
			wantErr: signature.ErrBadSignature, wantMsg: "Sigstore bundle 1 does not verify"},
		{name: "sigstore referrer for another digest", sig: withSigstore(sigstoreOf(trusted, "sha256:"+string(types.DigestOf(otherManifest)))), settings: required,
			wantErr: signature.ErrBadSignature, wantMsg: "not the artifact " + manifestDigest},
		{name: "sigstore attestation is no signature", sig: withSigstore(attestation), settings: required,
			wantErr: signature.ErrBadSignature, wantMsg: "is an attestation"},
		{name: "sign-blob --bundle (cosign 2 format)", sig: blobBundle(trusted, module, false), settings: required},
		{name: "sign-blob --bundle --new-bundle-format", sig: blobBundle(trusted, module, true), settings: required},
		{name: "sign-blob --bundle, wrong key", sig: blobBundle(stranger, module, false), wantErr: signature.ErrBadSignature, wantMsg: "does not verify"},
		{name: "sign-blob sigstore bundle, wrong key", sig: blobBundle(stranger, module, true), wantErr: signature.ErrBadSignature, wantMsg: "does not verify"},
		{name: "sign-blob sigstore bundle of other bytes", sig: blobBundle(trusted, other, true), wantErr: signature.ErrBadSignature, wantMsg: "not this module"},
		{name: "sign-blob sigstore bundle naming other bytes", sig: digestSwapped, wantErr: signature.ErrBadSignature, wantMsg: "not this module"},
		{name: "artifact bundle given as a blob signature", sig: sigstoreOf(trusted, manifestDigest), wantErr: signature.ErrBadSignature, wantMsg: "no message signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile, second.PubFile}, RequireAll: tt.requireAll})
			if err != nil {
				t.Fatal(err)
			}
			settings := tt.settings
			settings.Name = "auth"
			err = v.Verify(context.Background(), admission.Request{Filter: "auth", Module: module, Settings: settings, Signature: tt.sig})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantMsg)
			}
		})
	}
}

func hexToBase64(t *testing.T, h string) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := sigtest.NewKey(t).PubFile
	tests := []struct {
		name    string
		files   []string
		wantErr error
		wantMsg []string
	}{
		{name: "one key", files: []string{good}},
		{name: "no keys", wantErr: signature.ErrNoKeys},
		{name: "every bad file named", files: []string{filepath.Join(dir, "missing.pub"), good, notPEM}, wantErr: signature.ErrKey,
			wantMsg: []string{"missing.pub", "not.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := signature.New(signature.Config{KeyFiles: tt.files})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("err = %v, want it to name %s", err, m)
				}
			}
		})
	}
}

// TestAdmission runs the verifier where it is used: admission refuses a
// badly signed module at the signature check, before the trial run.
func TestAdmission(t *testing.T) {
	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	trusted, stranger := sigtest.NewKey(t), sigtest.NewKey(t)
	v, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile}})
	if err != nil {
		t.Fatal(err)
	}
	adm := admission.New(admission.Config{Verifier: v})
	sig, err := stranger.SignBlob(module)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := adm.Admit(context.Background(), admission.Request{
		File: "filters.d/auth.wasm", Filter: "auth", Module: module,
		Settings: config.Filter{Name: "auth", RequireSignature: true}, Signature: sig,
	})
	if !errors.Is(err, admission.ErrSignature) || !errors.Is(err, signature.ErrBadSignature) {
		t.Fatalf("err = %v, want %v and %v", err, admission.ErrSignature, signature.ErrBadSignature)
	}
	if last := rep.Checks[len(rep.Checks)-1]; last.Name != admission.CheckSignature || last.OK {
		t.Fatalf("last check %+v, want a failed %s", last, admission.CheckSignature)
	}
}
