package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	m := testModule(t, probeGuest)
	metrics := NewMetrics()
	a := newPlugin(t, m, PluginConfig{Name: "a", Metrics: metrics})
	b := newPlugin(t, m, PluginConfig{Name: "b", Metrics: metrics})
	for range 3 {
		request(t, a, NewHeaders(":path", "/"), nil)
	}
	s, err := b.NewHTTPStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := NewHeaders(":path", "/", "x-probe-op", "metric-get")
	if _, err := s.RequestHeaders(req, false); err != nil {
		t.Fatal(err)
	}
	// proxy_get_metric reads the shared counter, this request included.
	if v, _ := req.Get("x-requests"); v != "4" {
		t.Errorf("guest read probe_requests = %q, want 4", v)
	}
	if g, _ := metrics.Get("probe_inflight", MetricGauge); g.Value != 1 {
		t.Errorf("inflight during a request = %d, want 1", g.Value)
	}
	if _, err := s.RequestBody([]byte("x"), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
	request(t, b, NewHeaders(":path", "/", "x-probe-op", "buffer"), nil) // no body: nothing recorded
	s2, _ := b.NewHTTPStream(context.Background())
	s2.RequestHeaders(NewHeaders(":path", "/", "x-probe-op", "buffer"), false)
	s2.RequestBody([]byte("12345"), true)
	s2.Done()
	tests := []struct {
		name string
		typ  MetricType
		want MetricSample
	}{
		{"probe_requests", MetricCounter, MetricSample{Name: "probe_requests", Type: MetricCounter, Value: 6}},
		{"probe_inflight", MetricGauge, MetricSample{Name: "probe_inflight", Type: MetricGauge, Value: 0}},
		// 5 is counted from Envoy's bucket le=5 (the third) on.
		{"probe_body_bytes", MetricHistogram, MetricSample{Name: "probe_body_bytes", Type: MetricHistogram, Count: 1, Sum: 5, Min: 5, Max: 5,
			Buckets: []uint64{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}},
		{"probe_ticks", MetricCounter, MetricSample{Name: "probe_ticks", Type: MetricCounter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := metrics.Get(tt.name, tt.typ)
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v (%v), want %+v", got, ok, tt.want)
			}
		})
	}
	if snap := metrics.Snapshot(); len(snap) != 4 || snap[0].Name != "probe_body_bytes" {
		t.Errorf("snapshot = %+v", snap)
	}
}

func TestSharedDataCAS(t *testing.T) {
	m := testModule(t, probeGuest)
	shared := NewSharedData()
	const perPlugin = 50
	plugins := []*Plugin{
		newPlugin(t, m, PluginConfig{Name: "a", VMID: "vm", Shared: shared}),
		newPlugin(t, m, PluginConfig{Name: "b", VMID: "vm", Shared: shared}),
		newPlugin(t, m, PluginConfig{Name: "c", VMID: "vm", Shared: shared}),
	}
	other := newPlugin(t, m, PluginConfig{Name: "other", VMID: "other-vm", Shared: shared})
	var wg sync.WaitGroup
	for _, p := range plugins {
		wg.Go(func() {
			for range perPlugin {
				request(t, p, NewHeaders(":path", "/", "x-probe-op", "shared"), nil)
			}
		})
	}
	wg.Wait()
	request(t, other, NewHeaders(":path", "/", "x-probe-op", "shared"), nil)
	tests := []struct {
		name, vmID, want string
	}{
		{"three plugins of one vm id", "vm", strconv.Itoa(3 * perPlugin)},
		{"another vm id is apart", "other-vm", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, cas, ok := shared.Get(tt.vmID, "hits")
			if !ok || string(v) != tt.want || cas == 0 {
				t.Errorf("hits = %q cas %d (%v), want %s", v, cas, ok, tt.want)
			}
		})
	}
}

func TestTick(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		wantPeriod time.Duration
		wantTicks  int64
	}{
		{name: "period set", config: "tick=250", wantPeriod: 250 * time.Millisecond, wantTicks: 3},
		{name: "no period, no ticks", config: "", wantPeriod: 0, wantTicks: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metrics := NewMetrics()
			p := newPlugin(t, testModule(t, probeGuest),
				PluginConfig{Configuration: []byte(tt.config), Metrics: metrics})
			if got := p.TickPeriod(); got != tt.wantPeriod {
				t.Errorf("period = %v, want %v", got, tt.wantPeriod)
			}
			for range 3 {
				if err := p.Tick(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := metrics.Get("probe_ticks", MetricCounter); got.Value != tt.wantTicks {
				t.Errorf("ticks = %d, want %d", got.Value, tt.wantTicks)
			}
		})
	}
}

func TestSharedQueue(t *testing.T) {
	m := testModule(t, probeGuest)
	tests := []struct {
		name     string
		register bool
		wantLast string
		wantErr  string
	}{
		{name: "delivered to the registering plugin", register: true, wantLast: "worker:/job-1"},
		{name: "no queue registered", register: false, wantErr: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := NewSharedData()
			cfg := ""
			if tt.register {
				cfg = "queue=jobs"
			}
			worker := newPlugin(t, m, PluginConfig{Name: "worker", VMID: "vm", Shared: shared, Configuration: []byte(cfg)})
			front := newPlugin(t, m, PluginConfig{Name: "front", VMID: "vm", Shared: shared})
			req := NewHeaders(":path", "/job-1", "x-probe-op", "enqueue")
			request(t, front, req, nil)
			if v, _ := req.Get("x-enqueue-error"); !strings.Contains(v, tt.wantErr) || (v == "") != (tt.wantErr == "") {
				t.Errorf("x-enqueue-error = %q, want %q", v, tt.wantErr)
			}
			// The worker hears of the item the next time the host enters it.
			if err := worker.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
			v, _, _ := shared.Get("vm", "queue-last")
			if string(v) != tt.wantLast {
				t.Errorf("queue-last = %q, want %q", v, tt.wantLast)
			}
		})
	}
}

// clusterCaller sends callouts over real HTTP to the test server that
// serves the named cluster.
type clusterCaller struct {
	clusters map[string]string // cluster -> base URL
}

func (c clusterCaller) HTTPCall(ctx context.Context, req *HTTPCallRequest) (*HTTPCallResponse, error) {
	base, ok := c.clusters[req.Cluster]
	if !ok {
		return nil, ErrUnknownCluster
	}
	method, _ := req.Headers.Get(":method")
	path, _ := req.Headers.Get(":path")
	hr, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(string(req.Body)))
	if err != nil {
		return nil, err
	}
	for _, h := range req.Headers.All() {
		if !strings.HasPrefix(h[0], ":") {
			hr.Header.Add(h[0], h[1])
		}
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	out := &HTTPCallResponse{Headers: NewHeaders(":status", strconv.Itoa(res.StatusCode)), Body: body}
	return out, nil
}

func TestHTTPCallout(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" from="+r.Header.Get("x-from")+" body="+string(body))
		mu.Unlock()
		if r.Host == "deny" || strings.HasSuffix(r.Header.Get("x-from"), "deny") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "nope")
			return
		}
		io.WriteString(w, "token-1")
	}))
	defer srv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	caller := clusterCaller{clusters: map[string]string{"auth": srv.URL, "dead": deadURL}}

	tests := []struct {
		name       string
		plugin     string
		cluster    string
		timeout    string // x-probe-timeout, ms; "" = the probe's 5000
		caller     HTTPCaller
		wantAction Action
		wantHeader [2]string // a request header the guest set
		wantLocal  int       // status of the local response, 0 = none
		wantBody   string    // in the local response's body
	}{
		{name: "allowed resumes the request", plugin: "front", cluster: "auth", caller: caller,
			wantAction: ActionContinue, wantHeader: [2]string{"x-callout-body", "token-1"}},
		{name: "denied sends a local response", plugin: "front-deny", cluster: "auth", caller: caller,
			wantAction: ActionPause, wantLocal: 403},
		{name: "unknown cluster fails the call", plugin: "front", cluster: "nowhere", caller: caller,
			wantAction: ActionContinue, wantHeader: [2]string{"x-callout-error", "error status returned by host: bad argument"}},
		{name: "unreachable cluster delivers a failure", plugin: "front", cluster: "dead", caller: caller,
			wantAction: ActionPause, wantLocal: 502, wantBody: "callout failed: 11 "}, // BrokenConnection, then the error
		{name: "no caller configured", plugin: "front", cluster: "auth", caller: nil,
			wantAction: ActionContinue, wantHeader: [2]string{"x-callout-error", "error status returned by host: bad argument"}},
		// Envoy takes the timeout as a signed int: 2^32-1 ms is -1, refused.
		{name: "negative timeout fails the call", plugin: "front", cluster: "auth", timeout: "4294967295", caller: caller,
			wantAction: ActionContinue, wantHeader: [2]string{"x-callout-error", "error status returned by host: bad argument"}},
	}
	m := testModule(t, probeGuest)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlugin(t, m, PluginConfig{Name: tt.plugin, HTTPCall: tt.caller})
			s, err := p.NewHTTPStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			req := NewHeaders(":method", "GET", ":path", "/", "x-probe-op", "callout", "x-probe-cluster", tt.cluster)
			if tt.timeout != "" {
				req.Add("x-probe-timeout", tt.timeout)
			}
			a, err := s.RequestHeaders(req, true)
			if err != nil {
				t.Fatal(err)
			}
			if a != tt.wantAction {
				t.Errorf("action = %v, want %v", a, tt.wantAction)
			}
			if tt.wantHeader[0] != "" {
				if v, _ := req.Get(tt.wantHeader[0]); v != tt.wantHeader[1] {
					t.Errorf("%s = %q, want %q", tt.wantHeader[0], v, tt.wantHeader[1])
				}
			}
			lr := s.LocalResponse()
			switch {
			case tt.wantLocal == 0 && lr != nil:
				t.Errorf("unexpected local response %+v", lr)
			case tt.wantLocal != 0 && (lr == nil || lr.Status != tt.wantLocal || !strings.Contains(string(lr.Body), tt.wantBody)):
				t.Errorf("local response = %+v, want status %d and %q", lr, tt.wantLocal, tt.wantBody)
			}
			if err := s.Done(); err != nil {
				t.Fatal(err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"GET /check from=front body=ping", "GET /check from=front-deny body=ping"}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("server saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestProperties(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	p := newPlugin(t, testModule(t, probeGuest), PluginConfig{
		Name: "props", RootID: "root-1", VMID: "vm-1",
		Properties: map[string][]byte{"node.id": []byte("node-7"), "node.metadata.region": []byte("eu-west")},
		Clock:      func() time.Time { return start.Add(time.Second) },
	})
	s, err := p.NewHTTPStreamInfo(context.Background(), StreamInfo{
		Source: "10.0.0.1:41000", Destination: "10.0.0.2:8080", Start: start,
		Properties: map[string][]byte{"xds.route_name": []byte("route-a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := NewHeaders(":method", "POST", ":path", "/api/v1?q=1", ":authority", "svc.local",
		"x-request-id", "req-42", "x-probe-op", "props")
	if _, err := s.RequestHeaders(req, true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
	}{
		{"plugin_name", "props"},
		{"plugin_root_id", "root-1"},
		{"plugin_vm_id", "vm-1"},
		{"node.id", "node-7"},
		{"node.metadata.region", "eu-west"},
		{"xds.route_name", "route-a"},
		{"request.path", "/api/v1?q=1"},
		{"request.url_path", "/api/v1"},
		{"request.method", "POST"},
		{"request.host", "svc.local"},
		{"request.id", "req-42"},
		{"request.headers.x-probe-op", "props"},
		{"source.address", "10.0.0.1:41000"},
		{"destination.port", "8080"},
		{"request.time", strconv.FormatInt(start.UnixNano(), 10)},
		{"no.such.thing", "error:error status returned by host: not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := req.Get("x-prop-" + tt.name); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if err := s.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestPropertyEncoding(t *testing.T) {
	s := &HTTPStream{
		info:            StreamInfo{Start: time.Unix(10, 0), Protocol: "HTTP/1.1"},
		requestHeaders:  NewHeaders(":path", "/x", "a", "1", "a", "2"),
		responseHeaders: NewHeaders(":status", "404"),
	}
	clock := func() time.Time { return time.Unix(12, 0) }
	tests := []struct {
		name string
		path []string
		want []byte
		ok   bool
	}{
		{"response code is an int64", []string{"response", "code"}, int64Bytes(404), true},
		{"duration is ns", []string{"request", "duration"}, int64Bytes(int64(2 * time.Second)), true},
		{"repeated header joined", []string{"request", "headers", "a"}, []byte("1,2"), true},
		{"whole map is pairs", []string{"response", "headers"}, encodePairs([][2]string{{":status", "404"}}), true},
		{"protocol", []string{"request", "protocol"}, []byte("HTTP/1.1"), true},
		{"no source", []string{"source", "address"}, nil, false},
		{"unknown", []string{"request", "nope"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.property(tt.path, clock)
			if ok != tt.ok || string(got) != string(tt.want) {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if binary.LittleEndian.Uint64(int64Bytes(-1)) != ^uint64(0) {
		t.Error("int64Bytes is not two's complement little endian")
	}
}

func TestModuleLists(t *testing.T) {
	m := engineModule(t, Config{Interpreter: true}, stampGuest)
	tests := []struct {
		name string
		list []string
		want []string
	}{
		{"imports", m.ImportedFunctions(), []string{"env.proxy_log", "env.proxy_add_header_map_value", "wasi_snapshot_preview1.fd_write"}},
		{"exports", m.ExportedFunctions(), []string{"proxy_on_memory_allocate", "proxy_abi_version_0_2_0", "_initialize"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]int{}
			for _, f := range tt.list {
				seen[f]++
			}
			for _, w := range tt.want {
				if seen[w] != 1 {
					t.Errorf("%s listed %d times in %v", w, seen[w], tt.list)
				}
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	m := testModule(t, probeGuest)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.NewPlugin(ctx, PluginConfig{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRawHostCalls(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Name: "raw", LogLevel: LogWarn, Clock: func() time.Time { return now }})
	req := NewHeaders(":path", "/", "x-probe-op", "raw")
	s := request(t, p, req, nil)
	sizeBefore := 0 // proxy_get_header_map_size saw the headers added before it
	for _, h := range req.All() {
		if h[0] == "x-headers-size" {
			break
		}
		sizeBefore += len(h[0]) + len(h[1])
	}
	tests := []struct {
		header, want string
	}{
		{"x-log-level", "0:3"},
		{"x-now", "0:" + strconv.FormatInt(now.UnixNano(), 10)},
		{"x-headers-size", "0:" + strconv.Itoa(sizeBefore)},
		{"x-body-status", "0:0"},
		{"x-config-status", "1"}, // NotFound: buffer 7 exists during proxy_on_configure only
		{"x-close-tcp", "2"},     // BadArgument: not a TCP stream
		{"x-close-request", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got, _ := req.Get(tt.header); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if !s.WasReset() {
		t.Error("proxy_close_stream(request) did not mark the stream reset")
	}
}

func TestSDKHostCalls(t *testing.T) {
	tests := []struct {
		op   string
		want [][2]string // the request headers afterwards
	}{
		{"set-headers", [][2]string{{":path", "/only"}, {"x-set", "1"}}},
		{"set-property", [][2]string{{":path", "/"}, {"x-probe-op", "set-property"}, {"x-mark", "sdk"}}},
		{"foreign", [][2]string{{":path", "/"}, {"x-probe-op", "foreign"}, {"x-foreign", "error status returned by host: not found"}}},
	}
	p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Name: "sdk"})
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			req := NewHeaders(":path", "/", "x-probe-op", tt.op)
			request(t, p, req, nil)
			if got := req.All(); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
