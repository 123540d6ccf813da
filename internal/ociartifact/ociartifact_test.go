package ociartifact

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const helloPkg = "internal/wasmtest/testdata/hello"

var insecure = Remote{Insecure: true}

func TestPushFetch(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	host := startRegistry(t, nil)
	ctx := context.Background()
	tests := []struct {
		name     string
		format   Format
		manifest *types.Manifest
		// wantLayer is the one layer's media type and title.
		wantLayer, wantTitle string
	}{
		{name: "image with manifest", format: FormatImage, manifest: &types.Manifest{Name: "hello", Version: "1.2.3", Capabilities: []string{"metrics", "tick"}},
			wantLayer: string(ggcrtypes.OCILayer), wantTitle: "hello"},
		{name: "image without manifest", format: FormatImage, wantLayer: string(ggcrtypes.OCILayer), wantTitle: "hello"},
		{name: "wasm artifact with manifest", format: FormatWasm, manifest: &types.Manifest{Name: "hello", Version: "1.2.3"},
			wantLayer: LayerMediaType, wantTitle: "hello.wasm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustRef(t, "oci://"+host+"/filters/hello:v1")
			pushed, err := PushAs(ctx, ref, tt.format, "hello.wasm", module, tt.manifest, insecure)
			if err != nil {
				t.Fatal(err)
			}
			resolved, err := Resolve(ctx, ref, insecure)
			if err != nil {
				t.Fatal(err)
			}
			if resolved != pushed {
				t.Fatalf("tag resolves to %s, pushed %s", resolved, pushed)
			}
			a, err := Fetch(ctx, ref.Pinned(resolved), testLimit, insecure)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Module, module) || a.Format != tt.format || a.ManifestDigest != pushed {
				t.Fatalf("fetched %d bytes, format %s, digest %s; want the %d pushed bytes as %s, %s", len(a.Module), a.Format, a.ManifestDigest, len(module), tt.format, pushed)
			}
			if !reflect.DeepEqual(a.Manifest, tt.manifest) {
				t.Fatalf("manifest %+v, want %+v", a.Manifest, tt.manifest)
			}
			if err := CheckModule(nil, a.RawManifest, a.Layer, module); err != nil {
				t.Fatalf("CheckModule: %v", err)
			}
			var m v1.Manifest
			if err := json.Unmarshal(a.RawManifest, &m); err != nil {
				t.Fatal(err)
			}
			if m.MediaType != ggcrtypes.OCIManifestSchema1 || len(m.Layers) != 1 ||
				string(m.Layers[0].MediaType) != tt.wantLayer || m.Layers[0].Annotations[AnnotationTitle] != tt.wantTitle {
				t.Fatalf("manifest has not one %s layer titled %s: %s", tt.wantLayer, tt.wantTitle, a.RawManifest)
			}
			again, err := PushAs(ctx, ref, tt.format, "hello.wasm", module, tt.manifest, insecure)
			if err != nil || again != pushed {
				t.Fatalf("pushing the same module again gave %s (%v), want the same digest %s", again, err, pushed)
			}
		})
	}
}

// testLimit is well above the test module's size.
const testLimit = 16 << 20

func TestFetchImageVariant(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	host := startRegistry(t, nil)
	ctx := context.Background()
	tests := []struct {
		name    string
		files   map[string][]byte
		limit   int64
		wantErr error
	}{
		{name: "plugin.wasm at the root", files: map[string][]byte{"plugin.wasm": module, "README": []byte("hi")}, limit: testLimit},
		{name: "./plugin.wasm", files: map[string][]byte{"./plugin.wasm": module}, limit: testLimit},
		{name: "no plugin.wasm", files: map[string][]byte{"filter.wasm": module}, limit: testLimit, wantErr: ErrNoPlugin},
		{name: "plugin.wasm over the limit", files: map[string][]byte{"plugin.wasm": module}, limit: int64(len(module)) - 1, wantErr: ErrTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layer := tarGz(t, tt.files)
			ref := mustRef(t, "oci://"+host+"/images/hello:"+string(rune('a'+i)))
			digest, err := put(ctx, ref, v1.Manifest{}, blob{ggcrtypes.OCIConfigJSON, []byte(`{}`), nil}, []blob{{ggcrtypes.OCILayer, layer, nil}}, insecure)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Fetch(ctx, ref.Pinned(digest), tt.limit, insecure)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(a.Module, module) || a.Format != FormatImage || !bytes.Equal(a.Layer, layer) {
				t.Fatalf("got %d bytes as %s, want the module as %s", len(a.Module), a.Format, FormatImage)
			}
			if err := CheckModule(nil, a.RawManifest, a.Layer, module); err != nil {
				t.Fatalf("CheckModule: %v", err)
			}
			if err := CheckModule(nil, a.RawManifest, a.Layer, append(bytes.Clone(module), 0)); !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("CheckModule with other bytes: %v", err)
			}
		})
	}
}

// countingBlobs counts blob GETs, to show a refused layer was not fetched.
func countingBlobs(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				n.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestFetchRefuses(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	var blobGets atomic.Int64
	host := startRegistry(t, countingBlobs(&blobGets))
	ctx := context.Background()
	small := []byte("\x00asm\x01\x00\x00\x00")
	big := bytes.Repeat([]byte{1}, 64<<10)
	wasmLayer := func(b []byte) blob { return blob{LayerMediaType, b, nil} }
	config := blob{ConfigMediaType, []byte(`{}`), nil}
	tests := []struct {
		name string
		// layers are uploaded; descriptor, if set, rewrites the first
		// layer's descriptor in the manifest.
		layers     []blob
		descriptor func(*v1.Descriptor)
		limit      int64
		wantErr    error
		wantMsg    string
		// wantBlobGets is how many blob downloads may start.
		wantBlobGets int64
	}{
		{name: "wrong layer media type", layers: []blob{{"application/octet-stream", module, nil}}, limit: testLimit,
			wantErr: ErrMediaType, wantMsg: "found config " + ConfigMediaType + " and layers [application/octet-stream]"},
		{name: "three wasm layers", layers: []blob{wasmLayer(module), wasmLayer(small), wasmLayer(small)}, limit: testLimit, wantErr: ErrMediaType},
		{name: "no layers", limit: testLimit, wantErr: ErrMediaType},
		{name: "descriptor claims 10 GB", layers: []blob{wasmLayer(module)}, limit: testLimit,
			descriptor: func(d *v1.Descriptor) { d.Size = 10 << 30 }, wantErr: ErrTooLarge, wantMsg: "claims 10737418240 bytes"},
		{name: "layer over the limit", layers: []blob{wasmLayer(big)}, limit: 32 << 10, wantErr: ErrTooLarge},
		{name: "descriptor understates the size", layers: []blob{wasmLayer(big)}, limit: testLimit,
			descriptor: func(d *v1.Descriptor) { d.Size = 100 }, wantErr: ErrDigestMismatch, wantMsg: "longer than the 100 bytes", wantBlobGets: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustRef(t, "oci://"+host+"/bad/f:"+string(rune('a'+i)))
			digest, err := putRewritten(ctx, ref, config, tt.layers, tt.descriptor)
			if err != nil {
				t.Fatal(err)
			}
			before := blobGets.Load()
			_, err = Fetch(ctx, ref.Pinned(digest), tt.limit, insecure)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantMsg)
			}
			if got := blobGets.Load() - before; got > tt.wantBlobGets {
				t.Fatalf("%d blob downloads started, want at most %d", got, tt.wantBlobGets)
			}
		})
	}
}

// putRewritten uploads blobs and a manifest whose first layer descriptor
// is rewritten by edit (a registry does not check descriptors against blobs).
func putRewritten(ctx context.Context, ref Ref, config blob, layers []blob, edit func(*v1.Descriptor)) (string, error) {
	n, err := ref.name(true)
	if err != nil {
		return "", err
	}
	opts := insecure.options(ctx)
	m := v1.Manifest{SchemaVersion: 2, MediaType: ggcrtypes.OCIManifestSchema1, Config: config.descriptor(), Layers: []v1.Descriptor{}}
	for _, b := range append([]blob{config}, layers...) {
		if err := uploadForTest(n.Context().String(), b, opts); err != nil {
			return "", err
		}
	}
	for _, b := range layers {
		m.Layers = append(m.Layers, b.descriptor())
	}
	if edit != nil {
		edit(&m.Layers[0])
	}
	raw, _ := json.Marshal(m)
	if err := remote.Put(n, rawManifest(raw), opts...); err != nil {
		return "", err
	}
	return "sha256:" + string(types.DigestOf(raw)), nil
}

func TestManifestBomb(t *testing.T) {
	huge := strings.Repeat(" ", MaxManifestBytes+1)
	var bodyBytes atomic.Int64
	// A registry that serves any manifest as an endless stream of spaces
	// and says so in HEAD, or lies in HEAD and says 200 bytes.
	serve := func(headSize string) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					h.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", string(ggcrtypes.OCIManifestSchema1))
				w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
				if r.Method == http.MethodHead {
					w.Header().Set("Content-Length", headSize)
					return
				}
				n, _ := w.Write([]byte(huge))
				bodyBytes.Add(int64(n))
			})
		}
	}
	tests := []struct {
		name     string
		headSize string
		fetch    bool // Fetch by tag (a GET) rather than Resolve (a HEAD)
	}{
		{name: "HEAD says 4 MiB + 1", headSize: "4194305"},
		{name: "HEAD says 200, GET streams more", headSize: "200", fetch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startRegistry(t, serve(tt.headSize))
			ref := mustRef(t, "oci://"+host+"/bomb/f:1")
			var err error
			if tt.fetch {
				_, err = Fetch(context.Background(), ref, testLimit, insecure)
			} else {
				_, err = Resolve(context.Background(), ref, insecure)
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want %v", err, ErrTooLarge)
			}
		})
	}
}

func TestRemoteAccess(t *testing.T) {
	module := wasmtest.Module(t, helloPkg)
	basicAuth := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "fleet" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	tests := []struct {
		name    string
		auth    bool
		creds   string // user:pass in the Docker config file, if any
		rem     Remote
		wantErr error
	}{
		{name: "plain http refused unless allowed", rem: Remote{}, wantErr: ErrInsecure},
		{name: "plain http allowed", rem: insecure},
		{name: "credentials from DOCKER_CONFIG", auth: true, creds: "fleet:s3cret", rem: insecure},
		{name: "wrong credentials", auth: true, creds: "fleet:nope", rem: insecure, wantErr: ErrUnauthorized},
		{name: "no credentials", auth: true, rem: insecure, wantErr: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wrap func(http.Handler) http.Handler
			if tt.auth {
				wrap = basicAuth
			}
			host := startRegistry(t, wrap)
			dir := t.TempDir()
			t.Setenv("HOME", dir) // no ~/.docker of the machine's
			t.Setenv("DOCKER_CONFIG", dir)
			if tt.creds != "" {
				cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(tt.creds)) + `"}}}`
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ref := mustRef(t, "oci://"+host+"/auth/f:1")
			_, err := Push(context.Background(), ref, "f.wasm", module, nil, tt.rem)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("push: err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if _, err := Resolve(context.Background(), ref, tt.rem); err != nil {
				t.Fatalf("resolve: %v", err)
			}
		})
	}
}

func TestResolveNotFound(t *testing.T) {
	host := startRegistry(t, nil)
	_, err := Resolve(context.Background(), mustRef(t, "oci://"+host+"/none/f:1"), insecure)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want %v", err, ErrNotFound)
	}
}

func TestSignaturesRoundTrip(t *testing.T) {
	host := startRegistry(t, nil)
	ctx := context.Background()
	ref := mustRef(t, "oci://"+host+"/sig/f:1")
	target := "sha256:" + strings.Repeat("b", 64)
	sigs := []CosignSignature{{Payload: []byte(`{"a":1}`), Signature: "c2ln"}, {Payload: []byte(`{"b":2}`), Signature: "c2lnMg=="}}
	if _, err := PushSignatures(ctx, ref, target, sigs, insecure); err != nil {
		t.Fatal(err)
	}
	sigRef := SignatureRef(ref, target)
	if want := "oci://" + host + "/sig/f:sha256-" + strings.Repeat("b", 64) + ".sig"; sigRef.String() != want {
		t.Fatalf("signature ref %s, want %s", sigRef, want)
	}
	d, err := Resolve(ctx, sigRef, insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FetchSignatures(ctx, sigRef.Pinned(d), insecure)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sigs) {
		t.Fatalf("got %+v, want %+v", got, sigs)
	}
}

func TestFetchSignaturesBounds(t *testing.T) {
	host := startRegistry(t, nil)
	ctx := context.Background()
	one := CosignSignature{Payload: []byte(`{}`), Signature: "eA=="}
	tests := []struct {
		name    string
		sigs    []CosignSignature
		wantErr error
		wantN   int
	}{
		{name: "16 signatures", sigs: slices.Repeat([]CosignSignature{one}, maxSignatures), wantN: maxSignatures},
		{name: "17 signatures", sigs: slices.Repeat([]CosignSignature{one}, maxSignatures+1), wantErr: ErrTooLarge},
		{name: "payload over 64 KiB", sigs: []CosignSignature{{Payload: bytes.Repeat([]byte(" "), maxPayloadBytes+1), Signature: "eA=="}}, wantErr: ErrTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustRef(t, "oci://"+host+"/sigbounds/f:1")
			target := "sha256:" + strings.Repeat(string(rune('a'+i)), 64)
			d, err := PushSignatures(ctx, ref, target, tt.sigs, insecure)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FetchSignatures(ctx, ref.Pinned(d), insecure)
			if !errors.Is(err, tt.wantErr) || len(got) != tt.wantN {
				t.Fatalf("got %d signatures, err %v; want %d, %v", len(got), err, tt.wantN, tt.wantErr)
			}
		})
	}
}
