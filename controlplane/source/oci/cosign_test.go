package oci_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/signature/sigtest"
	"github.com/wasmfleet/wasmfleet/controlplane/source/oci"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// TestCosignFormats attaches signatures each way cosign does, to each kind
// of artifact, and checks what the source reports verifies (or is refused)
// with the reason.
func TestCosignFormats(t *testing.T) {
	a, _ := modules(t)
	trusted, stranger := sigtest.NewKey(t), sigtest.NewKey(t)
	verifier, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile}, RequireAll: true})
	if err != nil {
		t.Fatal(err)
	}
	// legacy attaches a .sig image; sigstore a Sigstore bundle referrer.
	legacy := func(k sigtest.Key) func(t *testing.T, art, sigs ociartifact.Ref, digest string) {
		return func(t *testing.T, art, sigs ociartifact.Ref, digest string) {
			s, err := k.SignArtifact(art.Registry+"/"+art.Repository, digest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ociartifact.PushSignatures(context.Background(), sigs, digest, []ociartifact.CosignSignature{s}, insecure); err != nil {
				t.Fatal(err)
			}
		}
	}
	sigstore := func(k sigtest.Key, signed func(digest string) string) func(t *testing.T, art, sigs ociartifact.Ref, digest string) {
		return func(t *testing.T, art, sigs ociartifact.Ref, digest string) {
			b, err := k.SignArtifactBundle(art.Registry+"/"+art.Repository, signed(digest))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ociartifact.PushSigstoreBundle(context.Background(), art.Pinned(digest), sigs, b, insecure); err != nil {
				t.Fatal(err)
			}
		}
	}
	same := func(d string) string { return d }
	otherDigest := func(string) string { return "sha256:" + strings.Repeat("e", 64) }
	tests := []struct {
		name        string
		index       bool   // the tag names an image index (docker buildx)
		noReferrers bool   // the registry lacks the referrers API
		cosignRepo  string // COSIGN_REPOSITORY's repository, "" for beside the artifact
		sign        func(t *testing.T, art, sigs ociartifact.Ref, digest string)
		wantErr     error
		wantMsg     string
	}{
		{name: "cosign sign (.sig tag)", sign: legacy(trusted)},
		{name: "cosign sign --new-bundle-format (referrers API)", sign: sigstore(trusted, same)},
		{name: "cosign sign --new-bundle-format (referrers tag schema)", noReferrers: true, sign: sigstore(trusted, same)},
		{name: "COSIGN_REPOSITORY, .sig tag", cosignRepo: "signatures/auth", sign: legacy(trusted)},
		// cosign 2.6 attaches bundles beside the artifact whatever COSIGN_REPOSITORY says.
		{name: "COSIGN_REPOSITORY, Sigstore bundle beside the artifact", cosignRepo: "signatures/auth",
			sign: func(t *testing.T, art, _ ociartifact.Ref, digest string) {
				sigstore(trusted, same)(t, art, art, digest)
			}},
		{name: "signed image index (.sig tag)", index: true, sign: legacy(trusted)},
		{name: "signed image index (Sigstore bundle)", index: true, sign: sigstore(trusted, same)},
		{name: "Sigstore bundle by a stranger", sign: sigstore(stranger, same), wantErr: signature.ErrBadSignature, wantMsg: "does not verify"},
		{name: "Sigstore bundle for another digest", sign: sigstore(trusted, otherDigest), wantErr: signature.ErrBadSignature, wantMsg: "not the artifact"},
		{name: "signed beside the artifact, COSIGN_REPOSITORY elsewhere", cosignRepo: "signatures/auth",
			sign: func(t *testing.T, art, _ ociartifact.Ref, digest string) { legacy(trusted)(t, art, art, digest) }, wantErr: signature.ErrUnsigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startRegistry(t)
			reg.noReferrers.Store(tt.noReferrers)
			r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
			digest := push(t, r, a, nil)
			if tt.index {
				writeIndex(t, r, map[string]string{"linux/amd64": digest})
				if digest, err = ociartifact.Resolve(context.Background(), r, insecure); err != nil {
					t.Fatal(err)
				}
			}
			sigs := r
			cfg := oci.Config{Ref: r.String(), Insecure: true}
			if tt.cosignRepo != "" {
				cfg.SignatureRepository = reg.host + "/" + tt.cosignRepo
				sigs = ref(t, "oci://"+cfg.SignatureRepository+":x")
			}
			tt.sign(t, r, sigs, digest)
			ev := next(t, run(t, cfg))
			wantModule(t, ev, a, digest, r)
			err := verifier.Verify(context.Background(), admission.Request{Filter: ev.Filter, Module: ev.Module,
				Settings: config.Filter{Name: ev.Filter}, Signature: ev.Signature})
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("verify: err = %v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestStartBadSignatureRepository(t *testing.T) {
	err := oci.New(oci.Config{Filter: "auth", Ref: "oci://reg.example/auth:1", SignatureRepository: "no-registry"},
		make(chan types.Event)).Start(context.Background())
	if !errors.Is(err, ociartifact.ErrBadRef) || !strings.Contains(err.Error(), "COSIGN_REPOSITORY") {
		t.Fatalf("err = %v, want %v naming COSIGN_REPOSITORY", err, ociartifact.ErrBadRef)
	}
}
