package ociartifact

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/file"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestOrasPull pulls what Push wrote with oras-go's file store, which is
// what `oras pull` does: the layer lands under its title.
func TestOrasPull(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	host := startRegistry(t, nil)
	ctx := context.Background()
	ref := mustRef(t, "oci://"+host+"/filters/hello:1.0.0")
	digest, err := Push(ctx, ref, "hello.wasm", module, nil, insecure)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := orasremote.NewRepository(host + "/filters/hello")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	dir := t.TempDir()
	store, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	desc, err := oras.Copy(ctx, repo, "1.0.0", store, "1.0.0", oras.DefaultCopyOptions)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != digest {
		t.Fatalf("oras copied %s, pushed %s", desc.Digest, digest)
	}
	got, err := os.ReadFile(filepath.Join(dir, "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, module) {
		t.Fatalf("oras pulled %d bytes, want the %d pushed", len(got), len(module))
	}
}
