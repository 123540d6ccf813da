package oci_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/source/oci"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact/ocitest"
)

// TestCosignCLI signs with the real cosign (key pair, no transparency log)
// what wasmfleet pushed to the distribution registry, in each way cosign
// signs, and checks the registry source and the verifier accept it with
// the trusted key and refuse it with another.
func TestCosignCLI(t *testing.T) {
	cosign := ocitest.Tool(t, "cosign")
	host := ocitest.Registry(t)
	a, _ := modules(t)
	dir := t.TempDir()
	keyPair := func(name string) (priv, pub string) {
		prefix := filepath.Join(dir, name)
		ocitest.Run(t, []string{"COSIGN_PASSWORD="}, cosign, "generate-key-pair", "--output-key-prefix", prefix)
		return prefix + ".key", prefix + ".pub"
	}
	trustedKey, trustedPub := keyPair("trusted")
	strangerKey, _ := keyPair("stranger")
	verifier, err := signature.New(signature.Config{KeyFiles: []string{trustedPub}, RequireAll: true})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(module, sig []byte) error {
		return verifier.Verify(context.Background(), admission.Request{Filter: "auth", Module: module,
			Settings: config.Filter{Name: "auth"}, Signature: sig})
	}
	env := []string{"COSIGN_PASSWORD=", "COSIGN_YES=true"}
	noTlog := []string{"--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry"}

	registryTests := []struct {
		name       string
		key        string
		flags      []string
		cosignRepo string
		wantErr    error
	}{
		{name: "cosign sign", key: trustedKey},
		{name: "cosign sign --new-bundle-format", key: trustedKey, flags: []string{"--new-bundle-format"}},
		{name: "COSIGN_REPOSITORY", key: trustedKey, cosignRepo: "signatures/auth"},
		{name: "COSIGN_REPOSITORY, --new-bundle-format", key: trustedKey, cosignRepo: "signatures/bundles", flags: []string{"--new-bundle-format"}},
		{name: "another key", key: strangerKey, wantErr: signature.ErrBadSignature},
	}
	for i, tt := range registryTests {
		t.Run(tt.name, func(t *testing.T) {
			r := ref(t, "oci://"+host+"/filters/auth"+string(rune('a'+i))+":stable")
			digest := push(t, r, a, nil)
			cfg := oci.Config{Ref: r.String(), Insecure: true}
			env := env
			if tt.cosignRepo != "" {
				cfg.SignatureRepository = host + "/" + tt.cosignRepo
				env = append(env, "COSIGN_REPOSITORY="+cfg.SignatureRepository)
			}
			args := append(append([]string{"sign", "--key", tt.key}, noTlog...), tt.flags...)
			ocitest.Run(t, env, cosign, append(args, r.Pinned(digest).Plain())...)
			ev := next(t, run(t, cfg))
			wantModule(t, ev, a, digest, r)
			if err := verify(ev.Module, ev.Signature); !errors.Is(err, tt.wantErr) {
				t.Fatalf("verify: err = %v, want %v", err, tt.wantErr)
			}
		})
	}

	module := filepath.Join(dir, "auth.wasm")
	if err := os.WriteFile(module, a, 0o644); err != nil {
		t.Fatal(err)
	}
	blobTests := []struct {
		name    string
		key     string
		flags   []string
		bundle  bool // the signature is the --bundle file, not stdout
		wantErr error
	}{
		{name: "cosign sign-blob", key: trustedKey},
		{name: "cosign sign-blob --bundle", key: trustedKey, bundle: true},
		{name: "cosign sign-blob --bundle --new-bundle-format", key: trustedKey, bundle: true, flags: []string{"--new-bundle-format"}},
		{name: "cosign sign-blob, another key", key: strangerKey, wantErr: signature.ErrBadSignature},
		{name: "cosign sign-blob --bundle, another key", key: strangerKey, bundle: true, wantErr: signature.ErrBadSignature},
	}
	for i, tt := range blobTests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"sign-blob", "--key", tt.key, "--tlog-upload=false"}, tt.flags...)
			bundle := filepath.Join(dir, "bundle"+string(rune('a'+i))+".json")
			if tt.bundle {
				args = append(args, "--bundle", bundle)
			}
			sig := []byte(strings.TrimSpace(ocitest.Run(t, env, cosign, append(args, module)...)))
			if tt.bundle {
				if sig, err = os.ReadFile(bundle); err != nil {
					t.Fatal(err)
				}
			}
			if err := verify(a, sig); !errors.Is(err, tt.wantErr) {
				t.Fatalf("verify: err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
