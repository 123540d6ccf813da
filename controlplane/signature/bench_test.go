package signature_test

import (
	"context"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/signature/sigtest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// BenchmarkVerify measures a signature check of a ~2 MB module, detached
// and as a registry bundle (hashing the module dominates either).
func BenchmarkVerify(b *testing.B) {
	module := wasmtest.Module(b, "internal/wasmtest/testdata/hello")
	key := sigtest.NewKey(b)
	v, err := signature.New(signature.Config{KeyFiles: []string{key.PubFile}})
	if err != nil {
		b.Fatal(err)
	}
	detached, err := key.SignBlob(module)
	if err != nil {
		b.Fatal(err)
	}
	bundle := bundle(b, artifactManifest(b, module), key)
	for _, bc := range []struct {
		name string
		sig  []byte
	}{{"detached", detached}, {"oci-bundle", bundle}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(module)))
			req := admission.Request{Filter: "auth", Module: module, Signature: bc.sig}
			for b.Loop() {
				if err := v.Verify(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
