package ociartifact

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/file"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestPullBack reads what PushAs wrote with the libraries behind `oras
// pull` (oras-go's file store: a titled layer lands under its title, an
// unpack-annotated tar+gzip is unpacked into the directory its title names)
// and `crane export` (crane.Export: a one-layer non-tar artifact as it is,
// an image as the tar of its files).
func TestPullBack(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	host := startRegistry(t, nil)
	ctx := context.Background()
	tests := []struct {
		format Format
		// orasFile is where `oras pull` writes the module.
		orasFile string
		// exportTar says crane export gives a tar holding tarName.
		exportTar bool
		tarName   string
	}{
		{format: FormatImage, orasFile: "hello/plugin.wasm", exportTar: true, tarName: "hello/plugin.wasm"},
		{format: FormatWasm, orasFile: "hello.wasm"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			tag := string(tt.format)
			digest, err := PushAs(ctx, mustRef(t, "oci://"+host+"/filters/hello:"+tag), tt.format, "hello.wasm", module, nil, insecure)
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
			desc, err := oras.Copy(ctx, repo, tag, store, tag, oras.DefaultCopyOptions)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != digest {
				t.Fatalf("oras copied %s, pushed %s", desc.Digest, digest)
			}
			got, err := os.ReadFile(filepath.Join(dir, tt.orasFile))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, module) {
				t.Fatalf("oras pulled %d bytes, want the %d pushed", len(got), len(module))
			}

			img, err := crane.Pull(host+"/filters/hello@"+digest, crane.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := crane.Export(img, &out); err != nil {
				t.Fatal(err)
			}
			got = out.Bytes()
			if tt.exportTar {
				got = fileFromTar(t, out.Bytes(), tt.tarName)
			}
			if !bytes.Equal(got, module) {
				t.Fatalf("crane export gave %d bytes, want the %d pushed", len(got), len(module))
			}
		})
	}
}

// fileFromTar is the file called name in the tar b.
func fileFromTar(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the tar: %v", name, err)
		}
		if h.Name == name {
			got, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
	}
}
