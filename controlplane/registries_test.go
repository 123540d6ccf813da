package controlplane

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// countingRegistry is go-containerregistry's in-memory registry on a
// loopback port; it counts requests by path.
type countingRegistry struct {
	host string
	mu   sync.Mutex
	hits map[string]int
}

func startCountingRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	r := &countingRegistry{hits: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits[req.URL.Path]++
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// count is how many requests had a path containing part.
func (r *countingRegistry) count(part string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for p, c := range r.hits {
		if strings.Contains(p, part) {
			n += c
		}
	}
	return n
}

// waitMore waits until the registry has seen n more requests whose path
// contains part.
func (r *countingRegistry) waitMore(t *testing.T, part string, n int) {
	t.Helper()
	target := r.count(part) + n
	deadline := time.Now().Add(10 * time.Second)
	for r.count(part) < target {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d more requests for %s within 10s", n, part)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *countingRegistry) push(t *testing.T, repoTag string, module []byte) {
	t.Helper()
	ref, err := ociartifact.ParseRef("oci://" + r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ociartifact.Push(context.Background(), ref, "f.wasm", module, nil, ociartifact.Remote{Insecure: true}); err != nil {
		t.Fatal(err)
	}
}

// TestRegistrySourceReload adds, retags and removes an oci:// filter by
// editing the config file of a running control plane. A second registry
// filter, "clock", is in every version of the file: it must never be
// restarted, and its polls measure time while the test checks that a
// removed filter is no longer polled.
func TestRegistrySourceReload(t *testing.T) {
	a := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	b := wasmtest.Module(t, "controlplane/admission/testdata/guests/good")
	reg := startCountingRegistry(t)
	reg.push(t, "filters/auth:1", a)
	reg.push(t, "filters/auth:2", b)
	reg.push(t, "filters/clock:1", a)

	core, logs := observer.New(zapcore.InfoLevel)
	logger := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, core)
	})))
	entryEvery := func(filter, tag, poll string) string {
		return fmt.Sprintf("{name: %s, source: \"oci://%s/filters/%s:%s\", poll_interval: %s}", filter, reg.host, filter, tag, poll)
	}
	entry := func(filter, tag string) string { return entryEvery(filter, tag, "5ms") }
	head := "insecure_registries: [\"" + reg.host + "\"]\n"
	clock := entry("clock", "1")
	file := newConfigFile(t)
	cp := file.start(t, head+"filters: ["+clock+"]\n", logger)

	admitted := func(filter string, module []byte) {
		t.Helper()
		want := types.DigestOf(module)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			for _, f := range cp.ctrl.Status() {
				if f.Name == filter && (f.Stable == want || f.Candidate == want) {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: %s not admitted within 20s; status %+v", filter, want.Short(), cp.ctrl.Status())
	}
	// starts counts the pollers started for filter (each logs once).
	starts := func(filter string) int {
		return logs.FilterMessage("watching registry").FilterField(zap.String("filter", filter)).Len()
	}
	admitted("clock", a)

	// Added: polled and admitted without a restart.
	file.write(t, head+"filters: ["+clock+", "+entry("auth", "1")+"]\n")
	admitted("auth", a)

	// Retagged: the poller of tag 1 is replaced by one of tag 2.
	file.write(t, head+"filters: ["+clock+", "+entry("auth", "2")+"]\n")
	admitted("auth", b)

	// Refused (an unknown field) although it would retag back to 1: the
	// running pollers stay as they are, and tag 1 is not polled again.
	tag1 := reg.count("/filters/auth/manifests/1")
	file.write(t, head+"filterz: []\nfilters: ["+clock+", "+entry("auth", "1")+"]\n")
	waitCount(t, cp.metrics.ConfigReloads.WithLabelValues("refused"), 1)
	reg.waitMore(t, "/filters/auth/manifests/2", 3)
	if n := reg.count("/filters/auth/manifests/1") - tag1; n != 0 {
		t.Fatalf("tag 1 polled %d times after the refused edit, want 0", n)
	}
	if n := starts("auth"); n != 2 {
		t.Fatalf("auth poller started %d times, want 2 (add, retag)", n)
	}

	// A new poll interval replaces the poller too; the clock's stays.
	file.write(t, head+"filters: ["+clock+", "+entryEvery("auth", "2", "6ms")+"]\n")
	waitLog(t, logs, "watching registry", "auth", 3)

	// Removed: polling stops. Once the clock has polled a few times after
	// the poller said it stopped, auth must see no more requests.
	file.write(t, head+"filters: ["+clock+"]\n")
	// Three stops: at the retag, the new interval and now. A request the
	// server took just before the stop has landed after two clock polls.
	waitLog(t, logs, "stopped watching registry", "auth", 3)
	reg.waitMore(t, "/filters/clock/", 2)
	auth := reg.count("/filters/auth/")
	reg.waitMore(t, "/filters/clock/", 10)
	if n := reg.count("/filters/auth/") - auth; n != 0 {
		t.Fatalf("auth polled %d times after it was removed, want 0", n)
	}
	if n := starts("clock"); n != 1 {
		t.Fatalf("clock poller started %d times over the reloads, want 1", n)
	}
}

// waitLog waits until n log entries with message msg and field filter
// were written.
func waitLog(t *testing.T, logs *observer.ObservedLogs, msg, filter string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage(msg).FilterField(zap.String("filter", filter)).Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d %q logs for %s within 10s", n, msg, filter)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPollerKeys checks which config changes replace a running poller.
func TestPollerKeys(t *testing.T) {
	base := config.Config{
		InsecureRegistries: []string{"reg.local:5000"},
		Filters: []config.Filter{
			{Name: "auth", Source: "oci://reg.local:5000/filters/auth:1"},
			{Name: "logging"}, // the watched directory
		},
	}
	tests := []struct {
		name        string
		edit        func(c *config.Config)
		wantSame    bool
		wantPollers int
	}{
		{name: "nothing changed", edit: func(*config.Config) {}, wantSame: true, wantPollers: 1},
		{name: "plugin config changed", edit: func(c *config.Config) { c.Filters[0].Config = []byte(`{"x":1}`) }, wantSame: true, wantPollers: 1},
		{name: "default poll interval written out", edit: func(c *config.Config) { c.Filters[0].PollInterval = config.Duration(config.DefaultOCIPoll) }, wantSame: true, wantPollers: 1},
		{name: "tag changed", edit: func(c *config.Config) { c.Filters[0].Source = "oci://reg.local:5000/filters/auth:2" }, wantPollers: 1},
		{name: "poll interval changed", edit: func(c *config.Config) { c.Filters[0].PollInterval = config.Duration(time.Second) }, wantPollers: 1},
		{name: "registry no longer insecure", edit: func(c *config.Config) { c.InsecureRegistries = nil }, wantPollers: 1},
		{name: "filter renamed", edit: func(c *config.Config) { c.Filters[0].Name = "authz" }, wantPollers: 1},
		{name: "filter removed", edit: func(c *config.Config) { c.Filters = c.Filters[1:] }, wantPollers: 0},
		{name: "moved to the watched directory", edit: func(c *config.Config) { c.Filters[0].Source = "" }, wantPollers: 0},
		{
			name: "second filter on the same reference",
			edit: func(c *config.Config) {
				c.Filters = append(c.Filters, config.Filter{Name: "auth2", Source: c.Filters[0].Source})
			},
			wantSame: true, wantPollers: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base
			next.Filters = append([]config.Filter(nil), base.Filters...)
			tt.edit(&next)
			before, after := pollerKeys(base), pollerKeys(next)
			if len(after) != tt.wantPollers {
				t.Fatalf("%d pollers, want %d: %+v", len(after), tt.wantPollers, after)
			}
			_, kept := after[firstKey(before)]
			if kept != tt.wantSame {
				t.Fatalf("auth's poller kept = %v, want %v (before %+v, after %+v)", kept, tt.wantSame, before, after)
			}
		})
	}
}

func firstKey(m map[pollerKey]struct{}) pollerKey {
	for k := range m {
		return k
	}
	return pollerKey{}
}

// TestRegistrySetCosignRepository: COSIGN_REPOSITORY, where cosign keeps
// signatures, is where every registry source looks for them.
func TestRegistrySetCosignRepository(t *testing.T) {
	t.Setenv(CosignRepositoryEnv, "reg.example/signatures")
	s := newRegistrySet(config.Config{}, make(chan types.Event), zap.NewNop())
	if s.signatures != "reg.example/signatures" {
		t.Fatalf("signature repository %q, want COSIGN_REPOSITORY's", s.signatures)
	}
}
