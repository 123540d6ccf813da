package ociartifact

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/ociartifact/ocitest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// TestCLIs runs the README's format table against the real tools and the
// distribution registry: what wasmfleet pushes, `oras pull` and `crane
// export` give back; what oras and crane push, wasmfleet reads.
func TestCLIs(t *testing.T) {
	oras, crane := ocitest.Tool(t, "oras"), ocitest.Tool(t, "crane")
	host := ocitest.Registry(t)
	module := wasmtest.Module(t, helloPkg)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("plugin.wasm", module)
	write("config.json", []byte(`{"type":"envoy_proxy"}`))
	fetch := func(t *testing.T, tag string, want Format, wantIndex bool) {
		t.Helper()
		a, err := Fetch(ctx, mustRef(t, "oci://"+host+"/cli:"+tag), testLimit, insecure)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Module, module) || a.Format != want || (a.Index != nil) != wantIndex {
			t.Fatalf("read %d bytes as %s (index %t), want the module as %s (index %t)", len(a.Module), a.Format, a.Index != nil, want, wantIndex)
		}
	}

	t.Run("wasmfleet push, oras pull and crane export", func(t *testing.T) {
		for _, tt := range []struct {
			format             Format
			orasFile, tarEntry string // tarEntry "": crane export gives the module itself
		}{
			{format: FormatImage, orasFile: "hello/plugin.wasm", tarEntry: "hello/plugin.wasm"},
			{format: FormatWasm, orasFile: "hello.wasm"},
		} {
			d, err := PushAs(ctx, mustRef(t, "oci://"+host+"/cli:"+string(tt.format)), tt.format, "hello.wasm", module, nil, insecure)
			if err != nil {
				t.Fatal(err)
			}
			plain := mustRef(t, "oci://"+host+"/cli@"+d).Plain()
			out := filepath.Join(t.TempDir(), "out")
			ocitest.Run(t, nil, oras, "pull", "--plain-http", "-o", out, plain)
			if got, err := os.ReadFile(filepath.Join(out, tt.orasFile)); err != nil || !bytes.Equal(got, module) {
				t.Fatalf("%s: oras pull gave %d bytes at %s (%v), want the module", tt.format, len(got), tt.orasFile, err)
			}
			got := []byte(ocitest.Run(t, nil, crane, "export", "--insecure", plain, "-"))
			if tt.tarEntry != "" {
				got = fileFromTar(t, got, tt.tarEntry)
			}
			if !bytes.Equal(got, module) {
				t.Fatalf("%s: crane export gave %d bytes, want the module", tt.format, len(got))
			}
		}
	})
	t.Run("oras push, two layers", func(t *testing.T) {
		ocitest.Run(t, nil, oras, "push", "--plain-http", "--disable-path-validation", host+"/cli:oras2",
			filepath.Join(dir, "config.json")+":"+ConfigMediaType, filepath.Join(dir, "plugin.wasm")+":"+LayerMediaType)
		fetch(t, "oras2", FormatWasm, false)
	})
	t.Run("oras push, module alone", func(t *testing.T) {
		ocitest.Run(t, nil, oras, "push", "--plain-http", "--disable-path-validation", "--config", filepath.Join(dir, "config.json")+":"+ConfigMediaType,
			host+"/cli:oras1", filepath.Join(dir, "plugin.wasm")+":"+LayerMediaType)
		fetch(t, "oras1", FormatWasm, false)
	})
	t.Run("crane append: an image with plugin.wasm in a directory", func(t *testing.T) {
		layer := write("layer.tar.gz", tarGz(t, map[string][]byte{"filters/plugin.wasm": module}))
		ocitest.Run(t, nil, crane, "append", "--insecure", "--oci-empty-base", "-f", layer, "-t", host+"/cli:crane")
		fetch(t, "crane", FormatImage, false)
	})
	t.Run("crane index append: an index of one image", func(t *testing.T) {
		d, err := Push(ctx, mustRef(t, "oci://"+host+"/cli:for-index"), "hello.wasm", module, nil, insecure)
		if err != nil {
			t.Fatal(err)
		}
		ocitest.Run(t, nil, crane, "index", "append", "--insecure", "-m", host+"/cli@"+d, "-t", host+"/cli:index")
		fetch(t, "index", FormatImage, true)
	})
}
