package modserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// dirModules is a content-addressed directory, laid out as the store keeps
// modules: one file per digest.
type dirModules string

func (d dirModules) ModulePath(dg types.Digest) (string, bool) {
	p := filepath.Join(string(d), string(dg)+".wasm")
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

// vanishing reports a path whose file does not exist, as when the store
// collects a module between lookup and open.
type vanishing string

func (v vanishing) ModulePath(types.Digest) (string, bool) { return string(v), true }

func serve(t *testing.T, mods Modules) (*httptest.Server, []byte, types.Digest) {
	t.Helper()
	mod := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	d := types.DigestOf(mod)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, string(d)+".wasm"), mod, 0o644); err != nil {
		t.Fatal(err)
	}
	if mods == nil {
		mods = dirModules(dir)
	}
	srv := httptest.NewServer(New(mods, nil))
	t.Cleanup(srv.Close)
	return srv, mod, d
}

func TestServe(t *testing.T) {
	srv, mod, d := serve(t, nil)
	etag := `"sha256:` + string(d) + `"`
	unknown := types.DigestOf([]byte("nothing"))
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   []byte // nil: not checked
		wantCached bool   // immutable caching headers expected
	}{
		{name: "get", method: "GET", path: PathPrefix + string(d), wantStatus: 200, wantBody: mod, wantCached: true},
		{name: "head", method: "HEAD", path: PathPrefix + string(d), wantStatus: 200, wantBody: []byte{}, wantCached: true},
		{name: "if-none-match", method: "GET", path: PathPrefix + string(d), header: map[string]string{"If-None-Match": etag}, wantStatus: 304, wantBody: []byte{}},
		{name: "if-none-match other", method: "GET", path: PathPrefix + string(d), header: map[string]string{"If-None-Match": `"sha256:00"`}, wantStatus: 200, wantBody: mod, wantCached: true},
		{name: "range", method: "GET", path: PathPrefix + string(d), header: map[string]string{"Range": "bytes=0-3"}, wantStatus: 206, wantBody: []byte("\x00asm"), wantCached: true},
		{name: "unknown digest", method: "GET", path: PathPrefix + string(unknown), wantStatus: 404},
		{name: "short digest", method: "GET", path: PathPrefix + "abc", wantStatus: 400},
		{name: "upper-case digest", method: "GET", path: PathPrefix + strings.ToUpper(string(d)), wantStatus: 400},
		{name: "prefixed digest", method: "GET", path: PathPrefix + "sha256:" + string(d), wantStatus: 400},
		{name: "traversal", method: "GET", path: PathPrefix + "../../etc/passwd", wantStatus: 400},
		{name: "other path", method: "GET", path: "/modules/sha512/" + string(d), wantStatus: 404},
		{name: "post", method: "POST", path: PathPrefix + string(d), wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("body is %d bytes, want %d", len(body), len(tt.wantBody))
			}
			if tt.wantCached {
				for k, want := range map[string]string{
					"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "application/wasm",
				} {
					if got := resp.Header.Get(k); got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
			}
		})
	}
}

func TestVanishedFileIsNotFound(t *testing.T) {
	srv, _, d := serve(t, vanishing(filepath.Join(t.TempDir(), "gone.wasm")))
	resp, err := srv.Client().Get(srv.URL + PathPrefix + string(d))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", resp.StatusCode)
	}
}

// FuzzPath: whatever the path, the handler answers without panicking, never
// with a server error, and serves bytes only for the exact digest path.
func FuzzPath(f *testing.F) {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	d := types.DigestOf(mod)
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, string(d)+".wasm"), mod, 0o644); err != nil {
		f.Fatal(err)
	}
	h := New(dirModules(dir), nil)
	for _, seed := range []string{
		PathPrefix + string(d), PathPrefix, PathPrefix + "sha256:" + string(d), "/", "/modules/sha256",
		PathPrefix + string(d) + "/", PathPrefix + "%2e%2e", PathPrefix + strings.Repeat("f", 64), "//modules/sha256/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: status %d", path, rec.Code)
		}
		if rec.Code == 200 && path != PathPrefix+string(d) {
			t.Fatalf("%q served a module", path)
		}
	})
}
