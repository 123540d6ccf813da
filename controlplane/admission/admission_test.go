package admission

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

const guests = "controlplane/admission/testdata/guests/"

func guest(tb testing.TB, name string) []byte { return wasmtest.Module(tb, guests+name) }

// testTrialTimeout is the trial time limit of tests that are not about it:
// generous, because -race and a busy machine slow the interpreter down a lot.
const testTrialTimeout = time.Minute

// testRuntime is one interpreter runtime shared by the tests, as one
// control plane shares one.
var testRuntime *wasmhost.Runtime

func TestMain(m *testing.M) {
	var err error
	testRuntime, err = wasmhost.NewRuntime(context.Background(), wasmhost.Config{Interpreter: true, MemoryLimitMiB: 256})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testRuntime.Close(context.Background())
	os.Exit(code)
}

// trials counts the trial runs an admitter did, by the guest's log lines
// (every test guest that gets as far as proxy_on_configure logs there).
type trials struct{ logs *observer.ObservedLogs }

func newLogger() (*zap.Logger, trials) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), trials{logs}
}

func (t trials) count() int {
	return t.logs.FilterMessage("trial run guest log").Len()
}

func jsonConfig(tb testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type verifierFunc func(ctx context.Context, req Request) error

func (f verifierFunc) Verify(ctx context.Context, req Request) error { return f(ctx, req) }

func checkNames(r Report) []string {
	var out []string
	for _, c := range r.Checks {
		out = append(out, c.Name)
	}
	return out
}

var (
	allChecks       = []string{CheckSize, CheckDigest, CheckStructure, CheckExports, CheckImports, CheckTrialRun}
	allChecksSigned = []string{CheckSize, CheckDigest, CheckStructure, CheckExports, CheckImports, CheckSignature, CheckTrialRun}
	upToImports     = []string{CheckSize, CheckDigest, CheckStructure, CheckExports, CheckImports}
	upToExports     = []string{CheckSize, CheckDigest, CheckStructure, CheckExports}
	upToStructure   = []string{CheckSize, CheckDigest, CheckStructure}
	upToSignature   = []string{CheckSize, CheckDigest, CheckStructure, CheckExports, CheckImports, CheckSignature}
)

// moduleWithExports is a structurally valid module that exports the given
// functions and a memory, and has no code.
func moduleWithExports(names ...string) []byte {
	var body bytes.Buffer
	body.WriteByte(byte(len(names) + 1))
	for _, n := range names {
		body.WriteByte(byte(len(n)))
		body.WriteString(n)
		body.Write([]byte{0x00, 0x00})
	}
	body.Write([]byte{6, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00})
	size := binary.AppendUvarint(nil, uint64(body.Len())) // LEB128, as wasm encodes it
	return slices.Concat([]byte("\x00asm\x01\x00\x00\x00\x07"), size, body.Bytes())
}

func TestAdmit(t *testing.T) {
	good := guest(t, "good")
	tests := []struct {
		name     string
		module   []byte
		digest   types.Digest
		settings config.Filter
		sig      []byte
		cfg      Config
		// wantErr is nil for an admitted module; wantHostErr is the
		// wasmhost sentinel a trial-run failure must wrap too.
		wantErr     error
		wantHostErr error
		wantChecks  []string
		wantMsg     []string
		wantMinHost string
	}{
		{name: "good filter", module: good, wantChecks: allChecks, wantMinHost: abi.HostEnvoy133},
		{name: "good filter with its digest", module: good, digest: types.DigestOf(good), wantChecks: allChecks, wantMinHost: abi.HostEnvoy133},
		{
			name:        "config accepted",
			module:      guest(t, "strictconfig"),
			settings:    config.Filter{Config: jsonConfig(t, map[string]string{"header": "x-tenant"})},
			wantChecks:  allChecks,
			wantMinHost: abi.HostEnvoy133,
		},
		{
			name:        "config rejected by on_configure",
			module:      guest(t, "strictconfig"),
			settings:    config.Filter{Config: jsonConfig(t, map[string]string{"header": ""})},
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrConfigure,
			wantChecks:  allChecks,
			wantMsg:     []string{"config: header must not be empty"},
		},
		{
			name:        "no config at all",
			module:      guest(t, "strictconfig"),
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrConfigure,
			wantChecks:  allChecks,
			wantMsg:     []string{"config: not a JSON object"},
		},
		{
			name:        "environment handed to the guest",
			module:      guest(t, "needsenv"),
			settings:    config.Filter{VM: config.VM{Env: map[string]string{"NEEDSENV": "on"}}},
			wantChecks:  allChecks,
			wantMinHost: abi.HostEnvoy133,
		},
		{
			name:        "environment missing",
			module:      guest(t, "needsenv"),
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrVMStart,
			wantChecks:  allChecks,
			wantMsg:     []string{"vm: NEEDSENV is not on"},
		},
		{
			name:        "vm_start fails",
			module:      guest(t, "vmstartfail"),
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrVMStart,
			wantChecks:  allChecks,
			wantMsg:     []string{"vm: cannot start: required resource missing"},
		},
		{
			name:        "configure never returns",
			module:      guest(t, "loopconfig"),
			cfg:         Config{TrialTimeout: 300 * time.Millisecond},
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrTimeout,
			wantChecks:  allChecks,
		},
		{
			name:        "configure exhausts memory",
			module:      guest(t, "hog"),
			cfg:         Config{TrialMemoryMiB: 16}, // its own runtime, with this limit
			wantErr:     ErrTrialRun,
			wantHostErr: wasmhost.ErrMemoryLimit,
			wantChecks:  allChecks,
		},
		{
			name:       "unknown host function",
			module:     guest(t, "unknownimport"),
			wantErr:    ErrUnknownImport,
			wantChecks: upToImports,
			wantMsg:    []string{"unknown import env.proxy_does_not_exist"},
		},
		{
			name:        "needs a newer envoy",
			module:      wasmtest.Module(t, "controlplane/abi/testdata/guests/osfiles"),
			wantChecks:  allChecks,
			wantMinHost: abi.HostPR533,
		},
		{name: "too large", module: good, cfg: Config{MaxModuleBytes: 1 << 20}, wantErr: ErrTooLarge, wantChecks: []string{CheckSize}, wantMsg: []string{"limit is 1048576"}},
		{name: "digest mismatch", module: good, digest: types.DigestOf([]byte("other")), wantErr: ErrDigestMismatch, wantChecks: []string{CheckSize, CheckDigest}},
		{name: "not wasm", module: []byte("#!/bin/sh\necho hi\n"), wantErr: ErrNotWasm, wantChecks: upToStructure, wantMsg: []string{"bad magic"}},
		{name: "half written", module: good[:len(good)/2], wantErr: ErrTruncated, wantChecks: upToStructure},
		{name: "lying section length", module: []byte("\x00asm\x01\x00\x00\x00\x07\x04\x01\x09abc"), wantErr: ErrMalformed, wantChecks: upToStructure},
		{name: "no ABI version", module: moduleWithExports("proxy_on_vm_start"), wantErr: ErrMissingABI, wantChecks: upToExports},
		{
			name:       "no configure",
			module:     moduleWithExports("proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_request_headers"),
			wantErr:    ErrMissingExport,
			wantChecks: upToExports,
			wantMsg:    []string{"missing export proxy_on_configure"},
		},
		{name: "signature required, no verifier", module: good, settings: config.Filter{RequireSignature: true}, wantErr: ErrSignature, wantChecks: upToSignature, wantMsg: []string{"requires a signature"}},
		{
			name:   "signature verified",
			module: good,
			sig:    []byte("signed"),
			cfg: Config{Verifier: verifierFunc(func(_ context.Context, req Request) error {
				if string(req.Signature) != "signed" {
					return errors.New("bad signature")
				}
				return nil
			})},
			wantChecks:  allChecksSigned,
			wantMinHost: abi.HostEnvoy133,
		},
		{
			name:       "signature refused",
			module:     good,
			sig:        []byte("forged"),
			cfg:        Config{Verifier: verifierFunc(func(context.Context, Request) error { return errors.New("no trusted key signed it") })},
			wantErr:    ErrSignature,
			wantChecks: upToSignature,
			wantMsg:    []string{"no trusted key signed it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.TrialMemoryMiB == 0 {
				cfg.Runtime = testRuntime
			}
			if cfg.TrialTimeout == 0 {
				cfg.TrialTimeout = testTrialTimeout
			}
			file := "filters.d/" + strings.ReplaceAll(tt.name, " ", "-") + ".wasm"
			rep, err := New(cfg).Admit(context.Background(), Request{
				File: file, Filter: "f", Module: tt.module, Digest: tt.digest, Settings: tt.settings, Signature: tt.sig,
			})
			if !slices.Equal(checkNames(rep), tt.wantChecks) {
				t.Errorf("checks ran: %v, want %v", checkNames(rep), tt.wantChecks)
			}
			for i, c := range rep.Checks {
				if c.OK != (tt.wantErr == nil || i < len(rep.Checks)-1) {
					t.Errorf("check %s: OK = %v (%s)", c.Name, c.OK, c.Detail)
				}
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Admit: %v", err)
				}
				if rep.MinHost != tt.wantMinHost || rep.Digest != types.DigestOf(tt.module) || rep.TrialRun <= 0 || rep.Cached {
					t.Errorf("report: %+v", rep)
				}
				if !slices.Contains(rep.Exports, "proxy_on_configure") || rep.ABIVersion != abi.ABI020 {
					t.Errorf("exports %v, ABI %q", rep.Exports, rep.ABIVersion)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Admit error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantHostErr != nil && !errors.Is(err, tt.wantHostErr) {
				t.Fatalf("Admit error = %v, want it to wrap %v", err, tt.wantHostErr)
			}
			if prefix := "admission: " + file + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}

func TestAdmitCache(t *testing.T) {
	good, strict := guest(t, "good"), guest(t, "strictconfig")
	okConfig := config.Filter{Config: jsonConfig(t, map[string]string{"header": "x-a"})}
	badConfig := config.Filter{Config: jsonConfig(t, map[string]string{"header": ""})}
	needsenv := guest(t, "needsenv")
	envOn := config.Filter{VM: config.VM{Env: map[string]string{"NEEDSENV": "on"}}}
	type step struct {
		module     []byte
		file       string
		settings   config.Filter
		wantErr    error
		wantCached bool
		wantTrials int // total so far
	}
	tests := []struct {
		name    string
		entries int
		steps   []step
	}{
		{name: "admitted result is reused", steps: []step{
			{module: good, wantTrials: 1},
			{module: good, wantCached: true, wantTrials: 1},
		}},
		{name: "rejected result is reused", steps: []step{
			{module: strict, settings: badConfig, wantErr: ErrTrialRun, wantTrials: 1},
			{module: strict, settings: badConfig, wantErr: ErrTrialRun, wantCached: true, wantTrials: 1},
		}},
		{name: "another configuration runs again", steps: []step{
			{module: strict, settings: badConfig, wantErr: ErrTrialRun, wantTrials: 1},
			{module: strict, settings: okConfig, wantTrials: 2},
			{module: strict, settings: badConfig, wantErr: ErrTrialRun, wantCached: true, wantTrials: 2},
			{module: strict, settings: okConfig, wantCached: true, wantTrials: 2},
		}},
		{name: "another environment runs again", steps: []step{
			{module: needsenv, wantErr: ErrTrialRun, wantTrials: 1},
			{module: needsenv, settings: envOn, wantTrials: 2},
			{module: needsenv, settings: envOn, wantCached: true, wantTrials: 2},
		}},
		{name: "another file with the same bytes is named", steps: []step{
			{module: strict, file: "filters.d/a.wasm", settings: badConfig, wantErr: ErrTrialRun, wantTrials: 1},
			{module: strict, file: "oci://reg/a:2", settings: badConfig, wantErr: ErrTrialRun, wantCached: true, wantTrials: 1},
		}},
		{name: "bounded: the least recently used goes", entries: 2, steps: []step{
			{module: good, wantTrials: 1},
			{module: strict, settings: okConfig, wantTrials: 2},
			{module: good, wantCached: true, wantTrials: 2},
			{module: strict, settings: badConfig, wantErr: ErrTrialRun, wantTrials: 3}, // evicts strict+okConfig
			{module: good, wantCached: true, wantTrials: 3},
			{module: strict, settings: okConfig, wantTrials: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, trials := newLogger()
			a := New(Config{Runtime: testRuntime, Log: log, CacheEntries: tt.entries, TrialTimeout: testTrialTimeout})
			for i, s := range tt.steps {
				file := s.file
				if file == "" {
					file = "filters.d/f.wasm"
				}
				rep, err := a.Admit(context.Background(), Request{File: file, Filter: "f", Module: s.module, Settings: s.settings})
				if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
					t.Fatalf("step %d: error = %v, want %v", i, err, s.wantErr)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "admission: "+file+": ") {
					t.Errorf("step %d: error %q does not name %s", i, err, file)
				}
				if rep.Cached != s.wantCached {
					t.Errorf("step %d: Cached = %v, want %v", i, rep.Cached, s.wantCached)
				}
				if got := trials.count(); got != s.wantTrials {
					t.Errorf("step %d: %d trial runs so far, want %d", i, got, s.wantTrials)
				}
				if !slices.Equal(checkNames(rep), allChecks) {
					t.Errorf("step %d: checks %v", i, checkNames(rep))
				}
			}
		})
	}
}

// TestAdmitConcurrent: many callers admitting the same module at once share
// one trial run, and different modules run side by side (under -race).
func TestAdmitConcurrent(t *testing.T) {
	good, strict := guest(t, "good"), guest(t, "strictconfig")
	log, trials := newLogger()
	a := New(Config{Runtime: testRuntime, Log: log, TrialTimeout: testTrialTimeout})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Go(func() {
			req := Request{File: "filters.d/good.wasm", Filter: "good", Module: good}
			if i%2 == 1 {
				req = Request{File: "filters.d/strict.wasm", Filter: "strict", Module: strict,
					Settings: config.Filter{Config: json.RawMessage(`{"header":"x-b"}`)}}
			}
			if _, err := a.Admit(context.Background(), req); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := trials.count(); got != 2 {
		t.Errorf("%d trial runs for two distinct requests", got)
	}
}

// TestAdmitInterruptedNotCached: a trial run cut short by the caller's
// context says nothing about the module, so the next call runs it again.
func TestAdmitInterruptedNotCached(t *testing.T) {
	loop := guest(t, "loopconfig")
	log, trials := newLogger()
	a := New(Config{Runtime: testRuntime, Log: log, TrialTimeout: time.Hour})
	req := Request{File: "filters.d/loop.wasm", Filter: "loop", Module: loop}
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		// Cancel once the guest has reached its endless loop (it logs first).
		go func() {
			defer cancel()
			for deadline := time.Now().Add(time.Minute); trials.count() <= i && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}()
		rep, err := a.Admit(ctx, req)
		cancel()
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTrialRun) {
			t.Fatalf("call %d: error = %v, want context.Canceled and not ErrTrialRun", i, err)
		}
		if rep.Cached {
			t.Fatalf("call %d: interrupted result was cached", i)
		}
	}
	if got := trials.count(); got != 2 {
		t.Errorf("%d trial runs, want 2", got)
	}
}

func BenchmarkAdmit(b *testing.B) {
	good := guest(b, "good")
	b.Run("uncached", func(b *testing.B) {
		a := New(Config{Runtime: testRuntime, CacheEntries: 1})
		i := 0
		for b.Loop() {
			i++
			// A new configuration each time defeats the cache.
			settings := config.Filter{Config: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
			if _, err := a.Admit(context.Background(), Request{File: "f.wasm", Filter: "f", Module: good, Settings: settings}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		a := New(Config{Runtime: testRuntime})
		req := Request{File: "f.wasm", Filter: "f", Module: good}
		if _, err := a.Admit(context.Background(), req); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if rep, err := a.Admit(context.Background(), req); err != nil || !rep.Cached {
				b.Fatal(err, rep.Cached)
			}
		}
	})
}
