package main

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// Redacted replaces the value of a redacted header in the log.
const Redacted = "[redacted]"

// alwaysRedacted are credentials no configuration can log.
var alwaysRedacted = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

// sampleBuckets is the resolution of sample_rate (basis points, as rollouts use).
const sampleBuckets = 10000

// plugin is the per-configuration state the request contexts share.
type plugin struct {
	*sdk.Plugin[Config]
	// request and response are the configured headers, prepared once here
	// rather than per request (string hashing and concatenation are slow
	// in a wasm guest).
	request, response    []loggedHeader
	requests, sampledOut sdk.Counter
	threshold            uint64 // a request is logged when its bucket < threshold
	unkeyed              uint64 // requests without x-request-id seen so far
	// line is reused for every access line: the VM runs one callback at a
	// time, and an allocation per request is dear in the guest.
	line sdk.Entry
}

// loggedHeader is a configured header: its name, its key in the line
// ("req.<name>" or "resp.<name>") and whether its value is redacted.
type loggedHeader struct {
	name   string
	key    sdk.Key
	redact bool
}

// The keys of every access line, in the order they are written.
var (
	keyMethod      = sdk.NewKey("method")
	keyPath        = sdk.NewKey("path")
	keyAuthority   = sdk.NewKey("authority")
	keyRequestID   = sdk.NewKey("request_id")
	keyTraceparent = sdk.NewKey("traceparent")
	keyStatus      = sdk.NewKey("status")
	keyDuration    = sdk.NewKey("duration_us")
	keyBytesIn     = sdk.NewKey("bytes_in")
	keyBytesOut    = sdk.NewKey("bytes_out")
)

func setup(p *sdk.Plugin[Config]) (sdk.HTTPFactory, error) {
	redact := append(lowerAll(p.Config.RedactHeaders), alwaysRedacted...)
	pl := &plugin{
		Plugin:     p,
		request:    logged("req.", p.Config.RequestHeaders, redact),
		response:   logged("resp.", p.Config.ResponseHeaders, redact),
		requests:   p.Metrics.Counter("requests_total"),
		sampledOut: p.Metrics.Counter("sampled_out_total"),
		threshold:  uint64(p.Config.SampleRate*sampleBuckets + 0.5),
	}
	return func(uint32) types.HttpContext { return &httpContext{p: pl} }, nil
}

// logged prepares the configured header names: logged as prefix+name,
// redacted when in redact.
func logged(prefix string, names, redact []string) []loggedHeader {
	out := make([]loggedHeader, len(names))
	for i, n := range lowerAll(names) {
		out[i] = loggedHeader{name: n, key: sdk.NewKey(prefix + n), redact: slices.Contains(redact, n)}
	}
	return out
}

func lowerAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = sdk.LowerASCII(n)
	}
	return out
}

// sampled decides deterministically: by a hash of the request id when there
// is one (so every proxy and every retry agree), else by spreading the
// unkeyed requests evenly: request n is logged when (n*rate) mod 1 < rate,
// which logs the first one and then exactly rate of every run.
func (p *plugin) sampled(requestID string) bool {
	if p.threshold >= sampleBuckets {
		return true
	}
	if p.threshold == 0 {
		return false
	}
	if requestID != "" {
		return Bucket(requestID) < p.threshold
	}
	n := p.unkeyed
	p.unkeyed++
	return n*p.threshold%sampleBuckets < p.threshold
}

// FNV-1a 64's parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Bucket is the sampling bucket (0..9999) of a request id: FNV-1a 64,
// computed in place (hash/fnv's hasher and the []byte copy would be two
// allocations per sampled request).
func Bucket(requestID string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(requestID); i++ {
		h ^= uint64(requestID[i])
		h *= fnvPrime
	}
	return h % sampleBuckets
}

// httpContext keeps what one request's log line needs as the stream
// passes, and writes the line when the stream is done. It keeps the header
// maps as read and looks values up only for a line it writes: a sampled-out
// request costs no lookups.
type httpContext struct {
	types.DefaultHttpContext
	p *plugin
	// start is the wall clock at the request headers, in Unix nanoseconds.
	// Not Envoy's request.time property: each property read costs the Go
	// guest a re-entry (the host allocates in guest memory), several
	// microseconds, for a few microseconds of accuracy. Not time.Time: its
	// methods bring ~60 KB of formatting and zone code into the module.
	start int64
	// sawRequest: the request headers reached the filter (a stream reset
	// before them has nothing to log).
	sawRequest bool
	// request and response are the header maps as the filter saw them;
	// response only when response headers are logged.
	request, response sdk.HeaderMap
	status            int64
	bytesIn, bytesOut uint64
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.start = time.Now().UnixNano()
	h.sawRequest = true
	headers, err := sdk.RequestHeaders()
	if err != nil {
		h.p.Log.Warn("cannot read request headers", sdk.Err(err))
	}
	h.request = headers
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestBody(size int, _ bool) types.Action {
	h.bytesIn += uint64(size)
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if len(h.p.response) == 0 {
		// One value is cheaper to fetch than the whole map.
		if s, ok := sdk.ResponseHeader(":status"); ok {
			h.status = parseStatus(s)
		}
		return types.ActionContinue
	}
	headers, err := sdk.ResponseHeaders()
	if err != nil {
		h.p.Log.Warn("cannot read response headers", sdk.Err(err))
	}
	if s, ok := headers.Get(":status"); ok {
		h.status = parseStatus(s)
	}
	h.response = headers
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(size int, _ bool) types.Action {
	h.bytesOut += uint64(size)
	return types.ActionContinue
}

// OnHttpStreamDone runs once the response has ended (or the stream was
// reset); it is where the line is written, so the duration covers the
// whole exchange.
func (h *httpContext) OnHttpStreamDone() {
	h.p.requests.Increment(1)
	if !h.sawRequest {
		return
	}
	id, _ := h.request.Get("x-request-id")
	if !h.p.sampled(id) {
		h.p.sampledOut.Increment(1)
		return
	}
	if h.status == 0 {
		h.status = responseCode()
	}
	d := time.Now().UnixNano() - h.start
	if d < 0 {
		d = 0
	}
	get := func(name string) string { v, _ := h.request.Get(name); return v }
	e := h.p.line.Begin(h.p.Log, sdk.LevelInfo, "access").
		String(keyMethod, get(":method")).
		String(keyPath, get(":path")).
		String(keyAuthority, get(":authority")).
		String(keyRequestID, id)
	if tp, ok := h.request.Get("traceparent"); ok {
		e.String(keyTraceparent, tp)
	}
	appendHeaders(e, h.p.request, h.request)
	appendHeaders(e, h.p.response, h.response)
	e.Int(keyStatus, h.status).
		Int(keyDuration, d/1000).
		Uint(keyBytesIn, h.bytesIn).
		Uint(keyBytesOut, h.bytesOut).
		Write()
}

// appendHeaders adds the logged headers present in headers to e.
func appendHeaders(e *sdk.Entry, logged []loggedHeader, headers sdk.HeaderMap) {
	for _, lh := range logged {
		v, ok := headers.Get(lh.name)
		if !ok {
			continue
		}
		if lh.redact {
			v = Redacted
		}
		e.String(lh.key, v)
	}
}

// responseCode is Envoy's response.code property (8 bytes, little-endian),
// which also covers local replies that never passed our response callback.
func responseCode() int64 {
	if b, err := proxywasm.GetProperty([]string{"response", "code"}); err == nil && len(b) == 8 {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}

// parseStatus reads a ":status" value (three digits); anything else is 0.
// strconv.ParseInt would bring its error type's quoting code into the module.
func parseStatus(s string) int64 {
	if len(s) != 3 {
		return 0
	}
	var n int64
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n
}
