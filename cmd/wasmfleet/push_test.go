package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

func TestPushCmd(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	module := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	dir := t.TempDir()
	path := filepath.Join(dir, "hello.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.manifest.json"), []byte(`{"name":"hello","version":"1.0.0","capabilities":["metrics"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "plain http refused without --insecure", args: []string{path, "oci://" + host + "/f/hello:1"}, wantErr: "plain http"},
		{name: "push", args: []string{path, "oci://" + host + "/f/hello:1", "--insecure"}},
		{name: "bad reference", args: []string{path, "oci://hello:1", "--insecure"}, wantErr: "bad oci reference"},
		{name: "push, printing json", args: []string{path, "oci://" + host + "/f/hello:2", "--insecure", "-o", "json"}},
		{name: "push the one-layer wasm artifact", args: []string{path, "oci://" + host + "/f/hello:3", "--insecure", "--format", "wasm-artifact"}},
		{name: "an unknown format", args: []string{path, "oci://" + host + "/f/hello:4", "--insecure", "--format", "tarball"}, wantErr: "tarball"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := pushCmd()
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(tt.args)
			err := cmd.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			printed := strings.TrimSpace(out.String())
			if slices.Contains(tt.args, "json") {
				var p pushed
				if err := json.Unmarshal(out.Bytes(), &p); err != nil || !strings.HasSuffix(p.Reference, "@"+p.Digest) {
					t.Fatalf("push -o json printed %q (%v), want the pinned reference and its digest", printed, err)
				}
				printed = p.Reference
			}
			// Plain, as cosign, crane and oras take it; the cosign command names it.
			pinned, err := ociartifact.ParseRef(ociartifact.Scheme + printed)
			if err != nil || pinned.Digest == "" || strings.HasPrefix(printed, ociartifact.Scheme) {
				t.Fatalf("output %q is not a plain pinned reference: %v", out.String(), err)
			}
			if want := "cosign sign --key cosign.key --allow-http-registry --allow-insecure-registry " + printed; !slices.Contains(tt.args, "json") && !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), want)
			}
			a, err := ociartifact.Fetch(context.Background(), pinned, 16<<20, ociartifact.Remote{Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Module, module) || a.Manifest == nil || a.Manifest.Version != "1.0.0" {
				t.Fatalf("fetched %d bytes, manifest %+v", len(a.Module), a.Manifest)
			}
		})
	}
}
