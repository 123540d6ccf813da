package wasmhost

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
	"go.uber.org/goleak"
)

const (
	probeGuest = "controlplane/wasmhost/testdata/guests/probe"
	stampGuest = "controlplane/wasmhost/testdata/guests/stamp"
	helloGuest = "internal/wasmtest/testdata/hello"
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, r := range shared {
		r.rt.Close(context.Background())
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// testCache lets every compiler runtime of the test binary compile a
// module once.
var testCache = wazero.NewCompilationCache()

// testConfig is the engine tests use unless they test an engine: the
// compiler, or the interpreter under the race detector.
func testConfig() Config {
	return Config{Interpreter: raceDetector}
}

// newRuntime creates a runtime the test owns (for tests that need their
// own limits); most tests share one through testModule.
func newRuntime(tb testing.TB, cfg Config) *Runtime {
	tb.Helper()
	if cfg.CompilationCache == nil && !cfg.Interpreter {
		cfg.CompilationCache = testCache
	}
	r, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close(context.Background()) })
	return r
}

var (
	sharedMu sync.Mutex
	shared   = map[engineKey]*Runtime{}
	modules  = map[[2]any]*Module{}
)

// engineKey is what of a Config decides the code a runtime runs.
type engineKey struct{ interpreter, uninterruptible bool }

// engineModule compiles pkg once per test binary in a shared runtime of
// the engine cfg selects.
func engineModule(tb testing.TB, cfg Config, pkg string) *Module {
	tb.Helper()
	wasm := wasmtest.Module(tb, pkg)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	ek := engineKey{cfg.Interpreter, cfg.Uninterruptible}
	key := [2]any{ek, pkg}
	if m, ok := modules[key]; ok {
		return m
	}
	r := shared[ek]
	if r == nil {
		if !cfg.Interpreter {
			cfg.CompilationCache = testCache
		}
		var err error
		if r, err = NewRuntime(context.Background(), Config{Interpreter: cfg.Interpreter, Uninterruptible: cfg.Uninterruptible, CompilationCache: cfg.CompilationCache}); err != nil {
			tb.Fatal(err)
		}
		shared[ek] = r
	}
	m, err := r.Compile(context.Background(), wasm)
	if err != nil {
		tb.Fatal(err)
	}
	modules[key] = m
	return m
}

// testModule is engineModule with the default test engine.
func testModule(tb testing.TB, pkg string) *Module {
	tb.Helper()
	return engineModule(tb, testConfig(), pkg)
}

func compileGuest(tb testing.TB, r *Runtime, pkg string) *Module {
	tb.Helper()
	m, err := r.Compile(context.Background(), wasmtest.Module(tb, pkg))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func newPlugin(tb testing.TB, m *Module, cfg PluginConfig) *Plugin {
	tb.Helper()
	p, err := m.NewPlugin(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// logRecorder collects a plugin's log lines; safe for concurrent use.
type logRecorder struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	level LogLevel
	msg   string
}

func (l *logRecorder) log(level LogLevel, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{level, msg})
}

func (l *logRecorder) all() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logLine(nil), l.lines...)
}

// request runs one exchange with no bodies through a fresh stream.
func request(tb testing.TB, p *Plugin, req *Headers, resp *Headers) *HTTPStream {
	tb.Helper()
	s, err := p.NewHTTPStream(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.RequestHeaders(req, true); err != nil {
		tb.Fatal(err)
	}
	if resp != nil {
		if _, err := s.ResponseHeaders(resp, true); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Done(); err != nil {
		tb.Fatal(err)
	}
	return s
}
