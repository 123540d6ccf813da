package oci_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/signature/sigtest"
	"github.com/wasmfleet/wasmfleet/controlplane/source/oci"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

var insecure = ociartifact.Remote{Insecure: true}

// fakeRegistry is go-containerregistry's in-memory registry on a loopback
// port, with switches a test flips: down (every request's connection is
// dropped, as by a crashed registry), basic auth, noReferrers (the
// referrers API answers 404, as registries before OCI 1.1 do) and corrupt
// (blob bytes are altered on the way out); it counts requests.
type fakeRegistry struct {
	host        string
	down        atomic.Bool
	noReferrers atomic.Bool
	corrupt     atomic.Bool
	user        atomic.Pointer[string] // basic auth user:password; nil means none
	requests    atomic.Int64
	blobGets    atomic.Int64
	// pings are GET /v2/, the API check a client does before it
	// authenticates to a repository.
	pings atomic.Int64
}

func startRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	r := &fakeRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.down.Load() {
			panic(http.ErrAbortHandler)
		}
		if want := r.user.Load(); want != nil {
			u, p, ok := req.BasicAuth()
			if !ok || u+":"+p != *want {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if r.noReferrers.Load() && strings.Contains(req.URL.Path, "/referrers/") {
			http.NotFound(w, req)
			return
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.blobGets.Add(1)
			if r.corrupt.Load() {
				w = &flipLast{ResponseWriter: w}
			}
		}
		if req.Method == http.MethodGet && req.URL.Path == "/v2/" {
			r.pings.Add(1)
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// flipLast flips the last byte of every write of a response body.
type flipLast struct{ http.ResponseWriter }

func (f *flipLast) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c := bytes.Clone(b)
	c[len(c)-1] ^= 0xff
	return f.ResponseWriter.Write(c)
}

// waitRequests waits until the registry has seen n more requests, i.e.
// the source has polled a few times.
func (r *fakeRegistry) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := r.requests.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for r.requests.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the source did not poll %d times within 10s", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func ref(t *testing.T, s string) ociartifact.Ref {
	t.Helper()
	r, err := ociartifact.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t *testing.T, r ociartifact.Ref, module []byte, m *types.Manifest) string {
	t.Helper()
	d, err := ociartifact.Push(context.Background(), r, "f.wasm", module, m, insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// run starts a source and returns its events channel.
func run(t *testing.T, cfg oci.Config) <-chan types.Event {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 20 * time.Millisecond
	}
	cfg.Filter = "auth"
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan types.Event)
	done := make(chan error, 1)
	go func() { done <- oci.New(cfg, ch).Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return ch
}

func next(t *testing.T, ch <-chan types.Event) types.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return types.Event{}
}

func none(t *testing.T, ch <-chan types.Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %s for %s: %v", ev.Kind, ev.Origin.Ref, ev.Err)
	default:
	}
}

func wantModule(t *testing.T, ev types.Event, module []byte, manifestDigest string, r ociartifact.Ref) {
	t.Helper()
	if ev.Kind != types.ModuleChanged || ev.Filter != "auth" || ev.Digest != types.DigestOf(module) || string(ev.Module) != string(module) {
		t.Fatalf("event %s %s digest %s (err %v), want module-changed with digest %s", ev.Kind, ev.Filter, ev.Digest, ev.Err, types.DigestOf(module))
	}
	if want := (types.Origin{Kind: types.OriginOCI, Ref: r.Pinned(manifestDigest).String()}); ev.Origin != want {
		t.Fatalf("origin %+v, want %+v", ev.Origin, want)
	}
}

func modules(t *testing.T) (a, b []byte) {
	return wasmtest.Module(t, "internal/wasmtest/testdata/hello"), wasmtest.Module(t, "controlplane/admission/testdata/guests/good")
}

func TestTagMoves(t *testing.T) {
	a, b := modules(t)
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	manifest := &types.Manifest{Name: "auth", Version: "1.0.0", Capabilities: []string{"metrics"}}
	da := push(t, r, a, manifest)
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true})

	ev := next(t, ch)
	wantModule(t, ev, a, da, r)
	if ev.Manifest == nil || ev.Manifest.Version != "1.0.0" || ev.Signature != nil {
		t.Fatalf("manifest %+v signature %q, want version 1.0.0 and no signature", ev.Manifest, ev.Signature)
	}
	reg.waitRequests(t, 6)
	none(t, ch) // an unchanged tag reports nothing

	db := push(t, r, b, nil)
	wantModule(t, next(t, ch), b, db, r)
	// Moving the tag back reports the first version again.
	if again := push(t, r, a, manifest); again != da {
		t.Fatalf("re-push gave %s, want the same manifest %s", again, da)
	}
	wantModule(t, next(t, ch), a, da, r)
}

// TestTransportReused checks that polls share one transport: the registry is
// pinged once for the first poll's requests and not again while it answers,
// before and after an outage (after which the source starts afresh).
func TestTransportReused(t *testing.T) {
	a, b := modules(t)
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	da := push(t, r, a, nil)
	before := reg.pings.Load()
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true})
	wantModule(t, next(t, ch), a, da, r)
	reg.waitRequests(t, 20) // about ten polls
	if n := reg.pings.Load() - before; n != 1 {
		t.Fatalf("%d pings over the first poll and ten more, want 1", n)
	}

	reg.down.Store(true)
	reg.waitRequests(t, 2)
	reg.down.Store(false)
	db := push(t, r, b, nil)
	wantModule(t, next(t, ch), b, db, r)
	before = reg.pings.Load()
	reg.waitRequests(t, 20)
	if n := reg.pings.Load() - before; n != 0 {
		t.Fatalf("%d pings over ten polls after the registry came back, want 0", n)
	}
}

func TestDigestPinned(t *testing.T) {
	a, b := modules(t)
	reg := startRegistry(t)
	tag := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	da := push(t, tag, a, nil)
	pinned := tag.Pinned(da)
	ch := run(t, oci.Config{Ref: pinned.String(), Insecure: true})
	wantModule(t, next(t, ch), a, da, tag)
	push(t, tag, b, nil)
	reg.waitRequests(t, 6)
	none(t, ch)
}

func TestRegistryDownAndBack(t *testing.T) {
	a, b := modules(t)
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	da := push(t, r, a, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true, Log: zap.New(core)})
	wantModule(t, next(t, ch), a, da, r)

	reg.down.Store(true)
	reg.waitRequests(t, 5) // several failed polls
	none(t, ch)
	if n := logs.FilterMessageSnippet("registry failing").Len(); n != 1 {
		t.Fatalf("%d 'registry failing' logs over several failed polls, want 1", n)
	}
	reg.down.Store(false)
	db := push(t, r, b, nil)
	wantModule(t, next(t, ch), b, db, r)
	if n := logs.FilterMessageSnippet("reachable again").Len(); n != 1 {
		t.Fatalf("%d 'reachable again' logs, want 1", n)
	}

	// The tag is deleted: nothing is reported, the last version stands,
	// and a new push is picked up.
	reg.deleteTag(t, "filters/auth", "stable")
	reg.waitRequests(t, 5)
	none(t, ch)
	if n := logs.FilterField(zap.String("state", "not-found")).Len(); n != 1 {
		t.Fatalf("%d not-found state logs, want 1", n)
	}
	push(t, r, a, nil)
	wantModule(t, next(t, ch), a, da, r)
}

// TestTagDeleted: a deleted tag is gone, not down. The registry answers,
// so polling stays at the poll interval (no outage backoff) and a re-push
// is seen within one interval; the last version stands meanwhile.
func TestTagDeleted(t *testing.T) {
	a, b := modules(t)
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	da := push(t, r, a, nil)
	// With outage backoff, 30 requests at 20ms doubling would take minutes.
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true, PollInterval: 20 * time.Millisecond, MaxBackoff: time.Hour})
	wantModule(t, next(t, ch), a, da, r)
	reg.deleteTag(t, "filters/auth", "stable")
	reg.waitRequests(t, 30)
	none(t, ch)
	db := push(t, r, b, nil)
	wantModule(t, next(t, ch), b, db, r)
}

func TestRefused(t *testing.T) {
	a, _ := modules(t)
	notModule := "sha256:" + strings.Repeat("c", 64)
	tests := []struct {
		name string
		// setup puts something at r and returns the reference to watch.
		setup    func(t *testing.T, r ociartifact.Ref) ociartifact.Ref
		maxBytes int64
		wantErr  error
		wantMsg  string
	}{
		{
			// The Wasm artifact's layer is the module, so its descriptor
			// tells the module's size before any download. (An image's
			// gzip layer is downloaded first; plugin.wasm's size is then
			// checked from its tar header: TestFetchImageVariant.)
			name: "module over the limit",
			setup: func(t *testing.T, r ociartifact.Ref) ociartifact.Ref {
				if _, err := ociartifact.PushAs(context.Background(), r, ociartifact.FormatWasm, "f.wasm", a, nil, insecure); err != nil {
					t.Fatal(err)
				}
				return r
			},
			maxBytes: int64(len(a)) - 1, wantErr: ociartifact.ErrTooLarge, wantMsg: "the limit is",
		},
		{
			// A cosign signature image is an OCI image of JSON layers.
			name: "not a module artifact",
			setup: func(t *testing.T, r ociartifact.Ref) ociartifact.Ref {
				sigs := []ociartifact.CosignSignature{{Payload: []byte("{}"), Signature: "eA=="}}
				if _, err := ociartifact.PushSignatures(context.Background(), r, notModule, sigs, insecure); err != nil {
					t.Fatal(err)
				}
				return ociartifact.SignatureRef(r, notModule)
			},
			wantErr: ociartifact.ErrMediaType, wantMsg: ociartifact.CosignPayloadMediaType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startRegistry(t)
			watched := tt.setup(t, ref(t, "oci://"+reg.host+"/filters/auth:stable"))
			blobsBefore := reg.blobGets.Load()
			ch := run(t, oci.Config{Ref: watched.String(), Insecure: true, MaxBytes: tt.maxBytes})
			ev := next(t, ch)
			if ev.Kind != types.SourceFailed || !errors.Is(ev.Err, tt.wantErr) {
				t.Fatalf("event %s err %v, want source-failed with %v", ev.Kind, ev.Err, tt.wantErr)
			}
			if msg := ev.Err.Error(); !strings.Contains(msg, watched.String()) || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("error %q does not name %s and say %q", msg, watched, tt.wantMsg)
			}
			if n := reg.blobGets.Load() - blobsBefore; n != 0 {
				t.Fatalf("%d blob downloads for a refused artifact, want 0", n)
			}
			reg.waitRequests(t, 6)
			none(t, ch) // refused once, not on every poll
		})
	}
}

// TestRefusedAfterGood moves a tag from a good module to bad input: the
// source reports the refusal once, naming the reference and why, and sends
// no module, so the fleet keeps the last good version.
func TestRefusedAfterGood(t *testing.T) {
	a, _ := modules(t)
	tests := []struct {
		name string
		// setup makes the watched tag r name something bad.
		setup   func(t *testing.T, reg *fakeRegistry, r ociartifact.Ref)
		wantErr error
		wantMsg string
	}{
		{
			name: "image index with no linux/amd64 manifest",
			setup: func(t *testing.T, reg *fakeRegistry, r ociartifact.Ref) {
				_, b := modules(t)
				arm := push(t, ref(t, "oci://"+reg.host+"/filters/auth:arm"), a, nil)
				wasm := push(t, ref(t, "oci://"+reg.host+"/filters/auth:wasm"), b, nil)
				writeIndex(t, r, map[string]string{"linux/arm64": arm, "wasip1/wasm": wasm})
			},
			wantErr: ociartifact.ErrMediaType, wantMsg: "no manifest for linux/amd64",
		},
		{
			name: "layer altered in the registry",
			setup: func(t *testing.T, reg *fakeRegistry, r ociartifact.Ref) {
				_, b := modules(t)
				push(t, r, b, nil)
				reg.corrupt.Store(true)
			},
			wantErr: ociartifact.ErrDigestMismatch, wantMsg: "hashes to",
		},
		{
			name: "manifest over 4 MiB",
			setup: func(t *testing.T, reg *fakeRegistry, r ociartifact.Ref) {
				d := push(t, ref(t, "oci://"+reg.host+"/filters/auth:base"), a, nil)
				hugeManifest(t, r, d)
			},
			wantErr: ociartifact.ErrTooLarge, wantMsg: "the limit is",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startRegistry(t)
			r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
			da := push(t, r, a, nil)
			ch := run(t, oci.Config{Ref: r.String(), Insecure: true})
			wantModule(t, next(t, ch), a, da, r)
			tt.setup(t, reg, r)
			ev := next(t, ch)
			if ev.Kind != types.SourceFailed || !errors.Is(ev.Err, tt.wantErr) {
				t.Fatalf("event %s err %v, want source-failed with %v", ev.Kind, ev.Err, tt.wantErr)
			}
			if msg := ev.Err.Error(); !strings.Contains(msg, r.String()) || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("error %q does not name %s and say %q", msg, r, tt.wantMsg)
			}
			reg.waitRequests(t, 6)
			none(t, ch) // refused once; no module replaces the last good one
		})
	}
}

// writeIndex tags at r an image index of the manifests digests (platform
// "os/arch" -> digest), as docker buildx pushes a multi-platform build.
func writeIndex(t *testing.T, r ociartifact.Ref, digests map[string]string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex)
	for p, digest := range digests {
		d, err := name.NewDigest(r.Registry+"/"+r.Repository+"@"+digest, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(d)
		if err != nil {
			t.Fatal(err)
		}
		osName, arch, _ := strings.Cut(p, "/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	tag, err := name.NewTag(r.Registry+"/"+r.Repository+":"+r.Tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
}

// hugeManifest tags at r the manifest of digest with 5 MiB of annotations
// added: a valid manifest, over the 4 MiB the distribution spec asks
// registries to accept.
func hugeManifest(t *testing.T, r ociartifact.Ref, digest string) {
	t.Helper()
	d, err := name.NewDigest(r.Registry+"/"+r.Repository+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"padding": strings.Repeat("x", 5<<20)}).(v1.Image)
	tag, err := name.NewTag(r.Registry+"/"+r.Repository+":"+r.Tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

func TestSignatures(t *testing.T) {
	a, _ := modules(t)
	trusted, stranger := sigtest.NewKey(t), sigtest.NewKey(t)
	verifier, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile}})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(ev types.Event) error {
		return verifier.Verify(context.Background(), admission.Request{
			File: ev.Origin.Ref, Filter: ev.Filter, Module: ev.Module, Digest: ev.Digest,
			Settings: config.Filter{Name: ev.Filter, RequireSignature: true}, Signature: ev.Signature,
		})
	}
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
	da := push(t, r, a, nil)
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true})

	ev := next(t, ch)
	wantModule(t, ev, a, da, r)
	if err := verify(ev); !errors.Is(err, signature.ErrUnsigned) {
		t.Fatalf("unsigned: err = %v, want %v", err, signature.ErrUnsigned)
	}
	sign := func(k sigtest.Key) {
		s, err := k.SignArtifact(reg.host+"/filters/auth", da)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ociartifact.PushSignatures(context.Background(), r, da, []ociartifact.CosignSignature{s}, insecure); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		key     sigtest.Key
		wantErr error
	}{
		{name: "signed by a stranger", key: stranger, wantErr: signature.ErrBadSignature},
		{name: "signed by the trusted key", key: trusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A signature attached after the push is picked up as it is.
			sign(tt.key)
			ev := next(t, ch)
			wantModule(t, ev, a, da, r)
			if err := verify(ev); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestStartBadRef(t *testing.T) {
	err := oci.New(oci.Config{Filter: "auth", Ref: "oci://nohost:tag"}, make(chan types.Event)).Start(context.Background())
	if !errors.Is(err, ociartifact.ErrBadRef) {
		t.Fatalf("err = %v, want %v", err, ociartifact.ErrBadRef)
	}
}

func TestAuth(t *testing.T) {
	a, _ := modules(t)
	tests := []struct {
		name   string
		creds  string
		wantOK bool
	}{
		{name: "credentials in DOCKER_CONFIG", creds: "fleet:s3cret", wantOK: true},
		{name: "wrong credentials", creds: "fleet:wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := startRegistry(t)
			r := ref(t, "oci://"+reg.host+"/filters/auth:stable")
			da := push(t, r, a, nil)
			creds := "fleet:s3cret"
			reg.user.Store(&creds) // from now on
			dir := t.TempDir()
			t.Setenv("HOME", dir) // not the machine's ~/.docker
			t.Setenv("DOCKER_CONFIG", dir)
			cfg := `{"auths":{"` + reg.host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(tt.creds)) + `"}}}`
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.InfoLevel)
			ch := run(t, oci.Config{Ref: r.String(), Insecure: true, Log: zap.New(core)})
			if tt.wantOK {
				wantModule(t, next(t, ch), a, da, r)
				return
			}
			reg.waitRequests(t, 6)
			none(t, ch)
			if n := logs.FilterField(zap.String("state", "unauthorized")).Len(); n != 1 {
				t.Fatalf("%d unauthorized state logs, want 1", n)
			}
		})
	}
}

// TestRegistryRestart stops the registry process (its listener closes) and
// starts a new, empty one on the same address: the source keeps the last
// good version through both, then follows the new registry.
func TestRegistryRestart(t *testing.T) {
	a, b := modules(t)
	serve := func(addr string) *httptest.Server {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening on %s again: %v", addr, err)
		}
		srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		return srv
	}
	srv := serve("127.0.0.1:0")
	host := strings.TrimPrefix(srv.URL, "http://")
	r := ref(t, "oci://"+host+"/filters/auth:stable")
	da := push(t, r, a, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	ch := run(t, oci.Config{Ref: r.String(), Insecure: true, Log: zap.New(core)})
	wantModule(t, next(t, ch), a, da, r)

	srv.Close()
	waitLog(t, logs, zap.String("state", "unreachable"))
	srv = serve(host)
	defer srv.Close()
	waitLog(t, logs, zap.String("state", "not-found")) // the new registry is empty
	none(t, ch)
	db := push(t, r, b, nil)
	wantModule(t, next(t, ch), b, db, r)
}

// waitLog waits until a log entry with field f was written.
func waitLog(t *testing.T, logs *observer.ObservedLogs, f zap.Field) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterField(f).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log with %s=%v within 10s", f.Key, f.String)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestImageLayout reads Istio's other layout, a container image holding
// plugin.wasm, and checks a cosign signature of it through to the module.
func TestImageLayout(t *testing.T) {
	a, _ := modules(t)
	trusted := sigtest.NewKey(t)
	verifier, err := signature.New(signature.Config{KeyFiles: []string{trusted.PubFile}, RequireAll: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t)
	r := ref(t, "oci://"+reg.host+"/filters/auth:image")
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed) // the level is valid; speed matters under -race
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "plugin.wasm", Mode: 0o644, Size: int64(len(a)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, ggcrtypes.OCIManifestSchema1), static.NewLayer(gz.Bytes(), ggcrtypes.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.host+"/filters/auth:image", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	s, err := trusted.SignArtifact(reg.host+"/filters/auth", d.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ociartifact.PushSignatures(context.Background(), r, d.String(), []ociartifact.CosignSignature{s}, insecure); err != nil {
		t.Fatal(err)
	}

	ch := run(t, oci.Config{Ref: r.String(), Insecure: true})
	ev := next(t, ch)
	wantModule(t, ev, a, d.String(), r)
	if err := verifier.Verify(context.Background(), admission.Request{Filter: ev.Filter, Module: ev.Module, Signature: ev.Signature}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// deleteTag deletes repo:tag through the registry API, as `crane delete`
// or a registry UI would.
func (r *fakeRegistry) deleteTag(t *testing.T, repo, tag string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+r.host+"/v2/"+repo+"/manifests/"+tag, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("deleting %s:%s: %v %v", repo, tag, resp, err)
	}
	resp.Body.Close()
}
