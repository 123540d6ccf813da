package sdktest

import (
	"bytes"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Mode says how a filter runs: as Go code in the test binary, or as its
// compiled module under wazero.
type Mode string

// The two modes every case runs in.
const (
	Native Mode = "native"
	Wasm   Mode = "wasm"
)

// Modes lists both modes, in the order Run uses.
var Modes = []Mode{Native, Wasm}

// Target is the filter under test.
type Target struct {
	// Package is the filter's main package relative to wasmfleet's
	// repository root, e.g. "filters/transform", or empty for the package
	// under test (a filter in a module of its own: go test runs in its
	// directory). It is built once per test binary.
	Package string
	// Native is the filter's VM context, normally filter.VMContext().
	Native types.VMContext
}

// Case is one request through the filter. A nil RequestBody means the
// request headers end the stream; a nil ResponseHeaders means no response
// phase (the stream completes after the request).
type Case struct {
	Name string
	// Config is the plugin configuration (JSON); empty means none.
	Config string
	// Properties are host properties by dotted path, e.g. "request.time".
	Properties map[string][]byte
	// RequestHeaders include pseudo-headers such as ":method" and ":path".
	RequestHeaders [][2]string
	RequestBody    []byte
	// ResponseHeaders include ":status".
	ResponseHeaders [][2]string
	ResponseBody    []byte
	// Chunk splits each body into frames of this many bytes; 0 sends one frame.
	Chunk int
	Want  Want
	// Check, when set, runs after Want's checks with everything observed.
	// It runs in both modes; Result.Mode says which.
	Check func(t testing.TB, r *Result)
}

// Want holds the expectations most cases need; zero values check nothing,
// except Local: a nil Local asserts that no local response was sent.
type Want struct {
	// StartFails expects OnPluginStart to fail; then nothing else runs and
	// each of Fields must be named (`"field":"<name>"`) in an error log line.
	StartFails bool
	Fields     []string
	// Local is the local response the filter must send.
	Local *Local
	// RequestHeaders and ResponseHeaders must be present (name, value) after
	// the filter ran; the No... lists must be absent.
	RequestHeaders    [][2]string
	NoRequestHeaders  []string
	ResponseHeaders   [][2]string
	NoResponseHeaders []string
	// RequestBody and ResponseBody, when non-nil, are the exact bytes that
	// went on (upstream, downstream): see Body.
	RequestBody  *string
	ResponseBody *string
	// InfoLogs must each be a substring of some info-level log line.
	InfoLogs []string
	// Metrics are exact values of host metrics by full name ("<filter>_<name>").
	Metrics map[string]uint64
}

// Local is an expected local response.
type Local struct {
	Status uint32
	// Body, when non-empty, must equal the response body.
	Body string
	// Headers must be present (name, value).
	Headers [][2]string
}

// Body returns a pointer to s for Want.RequestBody and Want.ResponseBody.
func Body(s string) *string { return &s }

// Result is everything a run observed.
type Result struct {
	Mode Mode
	// Started is OnPluginStart's result.
	Started bool
	// Actions the filter returned, per callback; body callbacks once per frame.
	RequestHeadersAction  types.Action
	RequestBodyActions    []types.Action
	ResponseHeadersAction types.Action
	ResponseBodyActions   []types.Action
	// Local is the local response sent, if any. After it the stream is
	// completed without further phases.
	Local *proxytest.LocalHttpResponse
	// Headers as they were after the filter ran.
	RequestHeaders  [][2]string
	ResponseHeaders [][2]string
	// RequestBody and ResponseBody are what was forwarded: the frames, as the
	// filter left them, on which it returned Continue.
	RequestBody  []byte
	ResponseBody []byte
	DebugLogs    []string
	InfoLogs     []string
	WarnLogs     []string
	ErrorLogs    []string

	host proxytest.HostEmulator
}

// Metric returns the value of the counter, gauge or histogram name.
func (r *Result) Metric(name string) (uint64, bool) {
	if v, err := r.host.GetCounterMetric(name); err == nil {
		return v, true
	}
	if v, err := r.host.GetGaugeMetric(name); err == nil {
		return v, true
	}
	if v, err := r.host.GetHistogramMetric(name); err == nil {
		return v, true
	}
	return 0, false
}

// Run runs every case against target natively and against its compiled
// module, as subtests "<case>/native" and "<case>/wasm".
//
// The SDK's host emulator is process-global (one emulated host at a time,
// behind a lock), so Run and Bench must not be called from parallel tests:
// do not use t.Parallel in a test binary that uses sdktest.
func Run(t *testing.T, target Target, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			for _, mode := range Modes {
				t.Run(string(mode), func(t *testing.T) {
					vm := vmFor(t, target, mode)
					r := runCase(t, vm, mode, &c)
					if r != nil {
						checkWant(t, &c, r)
					}
				})
			}
		})
	}
}

// runCase runs c in a fresh emulated host and, before the host goes away,
// the case's checks; it returns nil when the run panicked.
func runCase(t *testing.T, vm types.VMContext, mode Mode, c *Case) (r *Result) {
	defer quietStdLog(t)()
	host, reset := proxytest.NewHostEmulator(emulatorOption(vm, c))
	defer reset()
	defer func() {
		if p := recover(); p != nil {
			if mode == Wasm {
				dropModule(t.Name(), vm)
			}
			t.Errorf("sdktest: %s run panicked: %v", mode, p)
			r = nil
		}
	}()
	r = &Result{Mode: mode, host: host}
	host.StartVM()
	r.Started = host.StartPlugin() == types.OnPluginStartStatusOK
	if r.Started {
		stream(host, c, r)
	}
	r.DebugLogs = host.GetDebugLogs()
	r.InfoLogs = host.GetInfoLogs()
	r.WarnLogs = host.GetWarnLogs()
	r.ErrorLogs = host.GetErrorLogs()
	checkStart(t, c, r)
	if r.Started && !c.Want.StartFails {
		checkMetrics(t, c, r)
		if c.Check != nil {
			c.Check(t, r)
		}
	}
	return r
}

// emulatorOption sets up a host for vm with c's configuration and properties.
func emulatorOption(vm types.VMContext, c *Case) *proxytest.EmulatorOption {
	opt := proxytest.NewEmulatorOption().WithVMContext(vm)
	if c.Config != "" {
		opt = opt.WithPluginConfiguration([]byte(c.Config))
	}
	for path, value := range c.Properties {
		opt = opt.WithProperty(strings.Split(path, "."), value)
	}
	return opt
}

// stream drives one HTTP stream the way Envoy orders the callbacks.
func stream(host proxytest.HostEmulator, c *Case, r *Result) {
	id := host.InitializeHttpContext()
	defer host.CompleteHttpContext(id)
	defer func() {
		r.RequestHeaders = host.GetCurrentRequestHeaders(id)
		r.ResponseHeaders = host.GetCurrentResponseHeaders(id)
		r.Local = host.GetSentLocalResponse(id)
	}()
	request := direction{host.CallOnRequestHeaders, host.CallOnRequestBody, host.GetCurrentRequestBody}
	if !request.send(host, id, c.RequestHeaders, c.RequestBody, c.Chunk, &r.RequestHeadersAction, &r.RequestBodyActions, &r.RequestBody) ||
		c.ResponseHeaders == nil {
		return
	}
	response := direction{host.CallOnResponseHeaders, host.CallOnResponseBody, host.GetCurrentResponseBody}
	response.send(host, id, c.ResponseHeaders, c.ResponseBody, c.Chunk, &r.ResponseHeadersAction, &r.ResponseBodyActions, &r.ResponseBody)
}

// direction is the emulator's calls for one side of a stream.
type direction struct {
	onHeaders func(id uint32, headers [][2]string, endOfStream bool) types.Action
	onBody    func(id uint32, body []byte, endOfStream bool) types.Action
	body      func(id uint32) []byte
}

// send delivers headers and then body (in frames of chunk bytes) to the
// filter, recording the actions it returned and the frames it let through
// into forwarded. It reports false once the filter sent a local response.
func (d direction) send(host proxytest.HostEmulator, id uint32, headers [][2]string, body []byte, chunk int,
	headersAction *types.Action, bodyActions *[]types.Action, forwarded *[]byte) bool {
	*headersAction = d.onHeaders(id, headers, body == nil)
	if host.GetSentLocalResponse(id) != nil {
		return false
	}
	for _, frame := range frames(body, chunk) {
		a := d.onBody(id, frame.data, frame.last)
		*bodyActions = append(*bodyActions, a)
		if host.GetSentLocalResponse(id) != nil {
			return false
		}
		if a == types.ActionContinue {
			*forwarded = append(*forwarded, d.body(id)...)
		}
	}
	return true
}

type frame struct {
	data []byte
	last bool
}

// frames splits body into frames of chunk bytes (all of it if chunk <= 0);
// a nil body has no frames, an empty one a single empty final frame.
func frames(body []byte, chunk int) []frame {
	if body == nil {
		return nil
	}
	if chunk <= 0 || chunk >= len(body) {
		return []frame{{data: body, last: true}}
	}
	var out []frame
	for len(body) > chunk {
		out = append(out, frame{data: body[:chunk:chunk]})
		body = body[chunk:]
	}
	return append(out, frame{data: body, last: true})
}

func checkStart(t testing.TB, c *Case, r *Result) {
	t.Helper()
	switch {
	case c.Want.StartFails && r.Started:
		t.Errorf("OnPluginStart succeeded, want failure; error logs: %q", r.ErrorLogs)
	case !c.Want.StartFails && !r.Started:
		t.Errorf("OnPluginStart failed; error logs: %q", r.ErrorLogs)
	}
	for _, field := range c.Want.Fields {
		needle := `"field":` + string(jsonv.AppendString(nil, field))
		if !anyContains(r.ErrorLogs, needle) {
			t.Errorf("no error log names field %q; error logs: %q", field, r.ErrorLogs)
		}
	}
}

func checkMetrics(t testing.TB, c *Case, r *Result) {
	t.Helper()
	for name, want := range c.Want.Metrics {
		got, ok := r.Metric(name)
		if !ok {
			t.Errorf("metric %s: not defined", name)
		} else if got != want {
			t.Errorf("metric %s = %d, want %d", name, got, want)
		}
	}
}

func checkWant(t testing.TB, c *Case, r *Result) {
	t.Helper()
	if !r.Started || c.Want.StartFails {
		return
	}
	w := &c.Want
	switch {
	case w.Local == nil && r.Local != nil:
		t.Errorf("unexpected local response %d %q", r.Local.StatusCode, r.Local.Data)
	case w.Local != nil && r.Local == nil:
		t.Errorf("no local response, want %d", w.Local.Status)
	case w.Local != nil:
		if r.Local.StatusCode != w.Local.Status {
			t.Errorf("local response status %d, want %d (body %q)", r.Local.StatusCode, w.Local.Status, r.Local.Data)
		}
		if w.Local.Body != "" && string(r.Local.Data) != w.Local.Body {
			t.Errorf("local response body %q, want %q", r.Local.Data, w.Local.Body)
		}
		checkHeaders(t, "local response", r.Local.Headers, w.Local.Headers, nil)
	}
	checkHeaders(t, "request", r.RequestHeaders, w.RequestHeaders, w.NoRequestHeaders)
	checkHeaders(t, "response", r.ResponseHeaders, w.ResponseHeaders, w.NoResponseHeaders)
	if w.RequestBody != nil && !bytes.Equal(r.RequestBody, []byte(*w.RequestBody)) {
		t.Errorf("forwarded request body %q, want %q", r.RequestBody, *w.RequestBody)
	}
	if w.ResponseBody != nil && !bytes.Equal(r.ResponseBody, []byte(*w.ResponseBody)) {
		t.Errorf("forwarded response body %q, want %q", r.ResponseBody, *w.ResponseBody)
	}
	for _, s := range w.InfoLogs {
		if !anyContains(r.InfoLogs, s) {
			t.Errorf("no info log contains %q; info logs: %q", s, r.InfoLogs)
		}
	}
}

func checkHeaders(t testing.TB, what string, got, want [][2]string, absent []string) {
	t.Helper()
	for _, w := range want {
		if !hasHeader(got, w) {
			t.Errorf("%s header %s: %q missing; headers: %q", what, w[0], w[1], got)
		}
	}
	for _, name := range absent {
		if v, ok := sdk.Header(got, name); ok {
			t.Errorf("%s header %s present (%q), want absent", what, name, v)
		}
	}
}

func hasHeader(headers [][2]string, want [2]string) bool {
	for _, h := range headers {
		if strings.EqualFold(h[0], want[0]) && h[1] == want[1] {
			return true
		}
	}
	return false
}

func anyContains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// The compiled module of each package is instantiated once per test binary
// and reused by every case: the guest replaces its plugin context on each
// new emulated host, and HTTP context ids never repeat. A run that panics
// (a trap in the guest) drops the instance so later cases start clean.
var (
	vmsMu sync.Mutex
	vms   = map[string]proxytest.WasmVMContext{}
)

func vmFor(tb testing.TB, target Target, mode Mode) types.VMContext {
	tb.Helper()
	if mode == Native {
		if target.Native == nil {
			tb.Fatal("sdktest: Target.Native is nil")
		}
		return target.Native
	}
	vmsMu.Lock()
	defer vmsMu.Unlock()
	if vm, ok := vms[target.Package]; ok {
		return vm
	}
	pkg := target.Package
	if pkg == "" {
		dir, err := os.Getwd()
		if err != nil {
			tb.Fatalf("sdktest: the package under test: %v", err)
		}
		pkg = dir
	}
	vm, err := proxytest.NewWasmVMContext(wasmtest.Module(tb, pkg))
	if err != nil {
		tb.Fatalf("sdktest: %s: instantiate: %v", target.Package, err)
	}
	vms[target.Package] = vm
	return vm
}

func dropModule(name string, vm types.VMContext) {
	vmsMu.Lock()
	defer vmsMu.Unlock()
	for pkg, v := range vms {
		if v == vm {
			delete(vms, pkg)
			if err := v.Close(); err != nil {
				log.Printf("sdktest: %s: closing %s: %v", name, pkg, err)
			}
		}
	}
}

// quietStdLog sends the standard logger (which the emulator prints every
// guest log line to) into the test's log, and restores it afterwards.
func quietStdLog(tb testing.TB) (restore func()) {
	prev, flags := log.Writer(), log.Flags()
	log.SetOutput(tbWriter{tb})
	log.SetFlags(0)
	return func() {
		log.SetOutput(prev)
		log.SetFlags(flags)
	}
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = tbWriter{}
