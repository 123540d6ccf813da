// Command probe is a test guest that exercises the host: what it does is
// chosen by its VM configuration, its plugin configuration (space-separated
// directives) and, per request, the x-probe-op request header
// (comma-separated operations). See wasmhost's tests for each one.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct{ types.DefaultVMContext }

func (*vm) OnVMStart(int) types.OnVMStartStatus {
	cfg, _ := proxywasm.GetVMConfiguration()
	if string(cfg) == "fail" {
		proxywasm.LogError("probe: vm configuration rejected")
		return false
	}
	return true
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	name      string
	vmID      string
	requests  proxywasm.MetricCounter
	ticks     proxywasm.MetricCounter
	inflight  proxywasm.MetricGauge
	bodySizes proxywasm.MetricHistogram
}

// hoard keeps what the oom directive allocates reachable.
var hoard [][]byte

// spins is what the loop directive counts, so the loop is not optimised away.
var spins uint64

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	name, _ := proxywasm.GetProperty([]string{"plugin_name"})
	p.name = string(name)
	vmID, _ := proxywasm.GetProperty([]string{"plugin_vm_id"})
	p.vmID = string(vmID)
	p.requests = proxywasm.DefineCounterMetric("probe_requests")
	p.ticks = proxywasm.DefineCounterMetric("probe_ticks")
	p.inflight = proxywasm.DefineGaugeMetric("probe_inflight")
	p.bodySizes = proxywasm.DefineHistogramMetric("probe_body_bytes")
	if _, _, err := proxywasm.GetSharedData("hits"); errors.Is(err, types.ErrorStatusNotFound) {
		_ = proxywasm.SetSharedData("hits", []byte("0"), 0)
	}
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogError("probe: configuration: " + err.Error())
		return false
	}
	for _, d := range strings.Fields(string(cfg)) {
		key, value, _ := strings.Cut(d, "=")
		switch key {
		case "fail":
			proxywasm.LogError("probe: configuration rejected: " + value)
			return false
		case "loop":
			for {
				spins++
			}
		case "oom":
			for {
				hoard = append(hoard, make([]byte, 1<<20))
			}
		case "panic":
			panic("probe: panic in configure")
		case "tick":
			ms, _ := strconv.Atoi(value)
			if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
				proxywasm.LogError("probe: tick: " + err.Error())
			}
		case "queue":
			if _, err := proxywasm.RegisterSharedQueue(value); err != nil {
				proxywasm.LogError("probe: queue: " + err.Error())
			}
		case "log":
			logAll("configure")
		}
	}
	return true
}

func logAll(where string) {
	proxywasm.LogTrace(where + " trace")
	proxywasm.LogDebug(where + " debug")
	proxywasm.LogInfo(where + " info")
	proxywasm.LogWarn(where + " warn")
	proxywasm.LogError(where + " error")
	proxywasm.LogCritical(where + " critical")
}

func (p *plugin) OnTick() {
	p.ticks.Increment(1)
	casIncrement("ticks")
}

func (p *plugin) OnQueueReady(queueID uint32) {
	for {
		item, err := proxywasm.DequeueSharedQueue(queueID)
		if err != nil {
			return
		}
		_ = proxywasm.SetSharedData("queue-last", append([]byte(p.name+":"), item...), 0)
	}
}

// casIncrement adds one to a decimal counter in shared data, retrying on a
// CAS mismatch the way a filter on several workers must.
func casIncrement(key string) {
	for {
		v, cas, err := proxywasm.GetSharedData(key)
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogError("probe: shared get: " + err.Error())
			return
		}
		n, _ := strconv.Atoi(string(v))
		err = proxywasm.SetSharedData(key, []byte(strconv.Itoa(n+1)), cas)
		if err == nil {
			return
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			proxywasm.LogError("probe: shared set: " + err.Error())
			return
		}
	}
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext {
	return &stream{p: p, ops: map[string]bool{}}
}

type stream struct {
	types.DefaultHttpContext
	p   *plugin
	ops map[string]bool
}

// props are the properties the props operation copies into request headers.
var props = [][]string{
	{"plugin_name"}, {"plugin_root_id"}, {"plugin_vm_id"},
	{"node", "id"}, {"node", "metadata", "region"}, {"xds", "route_name"},
	{"request", "path"}, {"request", "url_path"}, {"request", "method"}, {"request", "host"},
	{"request", "id"}, {"request", "headers", "x-probe-op"},
	{"source", "address"}, {"destination", "port"}, {"request", "time"},
	{"no", "such", "thing"},
}

// intProps are encoded by the host as 8-byte little-endian integers.
var intProps = map[string]bool{"destination.port": true, "request.time": true, "response.code": true}

func property(path []string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "error:" + err.Error()
	}
	if intProps[strings.Join(path, ".")] {
		if len(v) != 8 {
			return "bad-int"
		}
		return strconv.FormatUint(binary.LittleEndian.Uint64(v), 10)
	}
	return string(v)
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.p.requests.Increment(1)
	s.p.inflight.Add(1)
	op, _ := proxywasm.GetHttpRequestHeader("x-probe-op")
	for _, o := range strings.Split(op, ",") {
		s.ops[o] = true
		if a, done := s.requestOp(o); done {
			return a
		}
	}
	return types.ActionContinue
}

// requestOp runs one operation; done says the callback returns a now.
func (s *stream) requestOp(op string) (a types.Action, done bool) {
	switch op {
	case "mutate":
		must(proxywasm.AddHttpRequestHeader("x-added", s.p.name))
		must(proxywasm.ReplaceHttpRequestHeader("x-replace", "new"))
		must(proxywasm.RemoveHttpRequestHeader("x-remove"))
		must(proxywasm.ReplaceHttpRequestHeader(":path", "/rewritten"))
	case "deny":
		must(proxywasm.SendHttpResponse(403, [][2]string{{"x-denied-by", s.p.name}}, []byte("denied"), -1))
		return types.ActionPause, true
	case "props":
		for _, path := range props {
			must(proxywasm.AddHttpRequestHeader("x-prop-"+strings.Join(path, "."), property(path)))
		}
	case "log":
		logAll("request")
	case "shared":
		casIncrement("hits")
	case "enqueue":
		id, err := proxywasm.ResolveSharedQueue(s.p.vmID, "jobs")
		if err != nil {
			must(proxywasm.AddHttpRequestHeader("x-enqueue-error", err.Error()))
			break
		}
		path, _ := proxywasm.GetHttpRequestHeader(":path")
		must(proxywasm.EnqueueSharedQueue(id, []byte(path)))
	case "trap":
		panic("probe: panic in request headers")
	case "loop":
		for {
			spins++
		}
	case "oom":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "callout":
		return s.callout(), true
	case "raw":
		rawCalls()
	case "set-headers":
		must(proxywasm.ReplaceHttpRequestHeaders([][2]string{{":path", "/only"}, {"x-set", "1"}}))
	case "set-property":
		must(proxywasm.SetProperty([]string{"probe", "mark"}, []byte(s.p.name)))
		must(proxywasm.AddHttpRequestHeader("x-mark", property([]string{"probe", "mark"})))
	case "foreign":
		_, err := proxywasm.CallForeignFunction("compress", []byte("x"))
		must(proxywasm.AddHttpRequestHeader("x-foreign", err.Error()))
	case "metric-get":
		must(proxywasm.AddHttpRequestHeader("x-requests", strconv.FormatUint(s.p.requests.Value(), 10)))
	}
	return types.ActionContinue, false
}

func (s *stream) callout() types.Action {
	cluster, _ := proxywasm.GetHttpRequestHeader("x-probe-cluster")
	timeout := uint64(5000)
	if v, err := proxywasm.GetHttpRequestHeader("x-probe-timeout"); err == nil {
		timeout, _ = strconv.ParseUint(v, 10, 32)
	}
	_, err := proxywasm.DispatchHttpCall(cluster,
		[][2]string{{":method", "GET"}, {":path", "/check"}, {":authority", "auth"}, {"x-from", s.p.name}},
		[]byte("ping"), nil, uint32(timeout),
		func(numHeaders, bodySize, _ int) {
			if numHeaders == 0 {
				code, msg := status()
				must(proxywasm.SendHttpResponse(502, nil, []byte("callout failed: "+itoa(code)+" "+msg), -1))
				return
			}
			headers, _ := proxywasm.GetHttpCallResponseHeaders()
			var status string
			for _, h := range headers {
				if h[0] == ":status" {
					status = h[1]
				}
			}
			body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
			if status != "200" {
				must(proxywasm.SendHttpResponse(403, [][2]string{{"x-auth-status", status}}, body, -1))
				return
			}
			must(proxywasm.AddHttpRequestHeader("x-callout-body", string(body)))
			must(proxywasm.ResumeHttpRequest())
		})
	if err != nil {
		must(proxywasm.AddHttpRequestHeader("x-callout-error", err.Error()))
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	if !s.ops["buffer"] {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogError("probe: body: " + err.Error())
		return types.ActionContinue
	}
	s.p.bodySizes.Record(uint64(len(body)))
	must(proxywasm.ReplaceHttpRequestBody([]byte(strings.ToUpper(string(body)))))
	must(proxywasm.AppendHttpRequestBody([]byte("!")))
	must(proxywasm.PrependHttpRequestBody([]byte("<")))
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	must(proxywasm.AddHttpResponseHeader("x-probe", s.p.name))
	must(proxywasm.AddHttpResponseHeader("x-probe-code", property([]string{"response", "code"})))
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(size int, endOfStream bool) types.Action {
	if !s.ops["buffer-response"] {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause
	}
	body, _ := proxywasm.GetHttpResponseBody(0, size)
	must(proxywasm.ReplaceHttpResponseBody(append(body, " [seen]"...)))
	return types.ActionContinue
}

func (s *stream) OnHttpRequestTrailers(int) types.Action {
	must(proxywasm.AddHttpRequestTrailer("x-probe", s.p.name))
	if s.ops["hold-trailers"] {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseTrailers(int) types.Action {
	must(proxywasm.ReplaceHttpResponseTrailer("grpc-status", "0"))
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() {
	s.p.inflight.Add(-1)
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	proxywasm.LogInfo("probe: done " + path)
}

// must logs a failed host call at error level, where the host's error
// messages pick it up.
func must(err error) {
	if err != nil {
		proxywasm.LogError("probe: host call failed: " + err.Error())
	}
}
