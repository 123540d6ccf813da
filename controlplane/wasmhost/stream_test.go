package wasmhost

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// engines runs a test under both of wazero's engines, and under the
// configuration traffic uses (Uninterruptible: other compiled code and no
// watcher per call); that one on the interpreter under -race, where the
// compiler is slow.
var engines = []struct {
	name string
	cfg  Config
}{
	{"compiler", Config{}},
	{"interpreter", Config{Interpreter: true}},
	{"uninterruptible", Config{Interpreter: raceDetector, Uninterruptible: true}},
}

func TestHeaders(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			p := newPlugin(t, engineModule(t, e.cfg, probeGuest), PluginConfig{Name: "edge"})
			req := NewHeaders(":method", "GET", ":path", "/a", ":authority", "example.com",
				"x-probe-op", "mutate", "x-replace", "old-1", "x-replace", "old-2", "X-Remove", "gone")
			resp := NewHeaders(":status", "201")
			request(t, p, req, resp)
			want := [][2]string{
				{":method", "GET"}, {":path", "/rewritten"}, {":authority", "example.com"},
				{"x-probe-op", "mutate"}, {"x-replace", "new"}, {"x-added", "edge"},
			}
			if got := req.All(); !slices.Equal(got, want) {
				t.Errorf("request headers\n got %q\nwant %q", got, want)
			}
			wantResp := [][2]string{{":status", "201"}, {"x-probe", "edge"}, {"x-probe-code", "201"}}
			if got := resp.All(); !slices.Equal(got, wantResp) {
				t.Errorf("response headers\n got %q\nwant %q", got, wantResp)
			}
		})
	}
}

func TestLocalResponse(t *testing.T) {
	p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Name: "guard"})
	s, err := p.NewHTTPStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.RequestHeaders(NewHeaders(":method", "GET", ":path", "/", "x-probe-op", "deny"), false)
	if err != nil {
		t.Fatal(err)
	}
	if a != ActionPause {
		t.Errorf("action = %v, want pause", a)
	}
	lr := s.LocalResponse()
	if lr == nil {
		t.Fatal("no local response")
	}
	if lr.Status != 403 || string(lr.Body) != "denied" || lr.GRPCStatus != -1 {
		t.Errorf("local response = %+v", lr)
	}
	if v, _ := lr.Headers.Get("x-denied-by"); v != "guard" {
		t.Errorf("x-denied-by = %q", v)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestBody(t *testing.T) {
	type step struct {
		chunk      string
		end        bool
		wantAction Action
		wantBody   string
	}
	tests := []struct {
		name     string
		op       string
		response bool
		steps    []step
	}{
		{name: "passes chunks through", steps: []step{
			{"hello ", false, ActionContinue, "hello "},
			{"world", true, ActionContinue, "world"},
		}},
		{name: "buffers then rewrites", op: "buffer", steps: []step{
			{"hello ", false, ActionPause, "hello "},
			{"wor", false, ActionPause, "hello wor"},
			{"ld", true, ActionContinue, "<HELLO WORLD!"},
		}},
		{name: "response buffered and appended", op: "buffer-response", response: true, steps: []step{
			{"a", false, ActionPause, "a"},
			{"b", true, ActionContinue, "ab [seen]"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Name: "body"})
			s, err := p.NewHTTPStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RequestHeaders(NewHeaders(":method", "POST", ":path", "/", "x-probe-op", tt.op), false); err != nil {
				t.Fatal(err)
			}
			run, kind := s.RequestBody, RequestBody
			if tt.response {
				if _, err := s.ResponseHeaders(NewHeaders(":status", "200"), false); err != nil {
					t.Fatal(err)
				}
				run, kind = s.ResponseBody, ResponseBody
			}
			for i, st := range tt.steps {
				a, err := run([]byte(st.chunk), st.end)
				if err != nil {
					t.Fatal(err)
				}
				if a != st.wantAction || string(s.Body(kind)) != st.wantBody {
					t.Errorf("step %d: got %v %q, want %v %q", i, a, s.Body(kind), st.wantAction, st.wantBody)
				}
			}
			if err := s.Done(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLogging(t *testing.T) {
	all := []LogLevel{LogTrace, LogDebug, LogInfo, LogWarn, LogError, LogCritical}
	tests := []struct {
		name  string
		level LogLevel
		want  []LogLevel
	}{
		{name: "everything by default", level: LogTrace, want: all},
		{name: "warn and above", level: LogWarn, want: all[3:]},
		{name: "critical only", level: LogCritical, want: all[5:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec logRecorder
			p := newPlugin(t, testModule(t, probeGuest),
				PluginConfig{Name: "log", Configuration: []byte("log"), Log: rec.log, LogLevel: tt.level})
			request(t, p, NewHeaders(":method", "GET", ":path", "/p", "x-probe-op", "log"), nil)
			var got []logLine
			for _, l := range rec.all() {
				got = append(got, l)
			}
			var want []logLine
			for _, where := range []string{"configure", "request"} {
				for _, l := range tt.want {
					want = append(want, logLine{l, where + " " + l.String()})
				}
			}
			if tt.level <= LogInfo {
				want = append(want, logLine{LogInfo, "probe: done /p"})
			}
			if !slices.Equal(got, want) {
				t.Errorf("log\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name    string
		op      string
		memMiB  int
		timeout time.Duration
		want    error
		reason  string
	}{
		{name: "panic", op: "trap", want: ErrTrap, reason: "panic: probe: panic in request headers"},
		{name: "endless loop", op: "loop", timeout: 300 * time.Millisecond, want: ErrTimeout},
		{name: "memory limit", op: "oom", memMiB: 32, want: ErrMemoryLimit, reason: "out of memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testModule(t, probeGuest)
			if tt.memMiB > 0 {
				cfg := testConfig()
				cfg.MemoryLimitMiB = tt.memMiB
				m = compileGuest(t, newRuntime(t, cfg), probeGuest)
			}
			p := newPlugin(t, m, PluginConfig{Name: "fragile"})
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			s, err := p.NewHTTPStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.RequestHeaders(NewHeaders(":path", "/", "x-probe-op", tt.op), true)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v, want %v with %q", err, tt.want, tt.reason)
			}
			if !errors.Is(p.Failed(), tt.want) {
				t.Errorf("Failed() = %v", p.Failed())
			}
			if _, err := p.NewHTTPStream(context.Background()); !errors.Is(err, ErrVMFailed) || !errors.Is(err, tt.want) {
				t.Errorf("next stream: err = %v, want ErrVMFailed and %v", err, tt.want)
			}
			if err := p.Close(context.Background()); err != nil {
				t.Errorf("closing a failed plugin: %v", err)
			}
		})
	}
}

// TestInterruption: only an interruptible runtime watches the context of a
// call. Under an uninterruptible one, a context that has ended does not stop
// the guest (Envoy has no per-callback timeout either), so the stream goes
// on; an endless loop is not tried there, as nothing could stop it.
func TestInterruption(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error // nil: the stream completes
	}{
		{name: "interruptible", cfg: testConfig(), want: context.Canceled},
		{name: "uninterruptible", cfg: Config{Interpreter: raceDetector, Uninterruptible: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlugin(t, engineModule(t, tt.cfg, stampGuest), PluginConfig{Name: "edge", Configuration: []byte("x")})
			ctx, cancel := context.WithCancel(context.Background())
			s, err := p.NewHTTPStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			_, err = s.RequestHeaders(NewHeaders(":method", "GET", ":path", "/"), true)
			if err == nil {
				err = s.Done()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want != nil && !errors.Is(p.Failed(), tt.want) {
				t.Errorf("Failed() = %v, want %v", p.Failed(), tt.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	m := testModule(t, stampGuest)
	p, err := m.NewPlugin(context.Background(), PluginConfig{Configuration: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.NewHTTPStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(); err != nil {
		t.Errorf("second Done: %v", err)
	}
	if _, err := s.RequestHeaders(nil, true); !errors.Is(err, ErrClosed) {
		t.Errorf("headers after Done: err = %v, want ErrClosed", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewHTTPStream(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("stream after Close: err = %v, want ErrClosed", err)
	}
}

func TestTrailers(t *testing.T) {
	tests := []struct {
		name       string
		op         string
		wantAction Action
	}{
		{name: "continue", op: "", wantAction: ActionContinue},
		{name: "held", op: "hold-trailers", wantAction: ActionPause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Name: "tr"})
			s, err := p.NewHTTPStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.RequestHeaders(NewHeaders(":path", "/", "x-probe-op", tt.op), false); err != nil {
				t.Fatal(err)
			}
			reqTrailers := NewHeaders("x-checksum", "abc")
			a, err := s.RequestTrailers(reqTrailers)
			if err != nil {
				t.Fatal(err)
			}
			if a != tt.wantAction {
				t.Errorf("action = %v, want %v", a, tt.wantAction)
			}
			respTrailers := NewHeaders("grpc-status", "13")
			if _, err := s.ResponseHeaders(NewHeaders(":status", "200"), false); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ResponseTrailers(respTrailers); err != nil {
				t.Fatal(err)
			}
			if got := reqTrailers.All(); !slices.Equal(got, [][2]string{{"x-checksum", "abc"}, {"x-probe", "tr"}}) {
				t.Errorf("request trailers %q", got)
			}
			if got := respTrailers.All(); !slices.Equal(got, [][2]string{{"grpc-status", "0"}}) {
				t.Errorf("response trailers %q", got)
			}
			if err := s.Done(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
