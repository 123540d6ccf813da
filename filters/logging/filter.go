package main

import (
	"encoding/binary"
	"hash/fnv"
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
	// Logged headers (lower case) and, per header, whether it is redacted:
	// decided once here rather than by a map lookup per request (string
	// hashing is slow in a wasm guest, which has no AES hash).
	requestHeaders, responseHeaders []string
	redactRequest, redactResponse   []bool
	requests, sampledOut            sdk.Counter
	threshold                       uint64 // a request is logged when its bucket < threshold
	unkeyed                         uint64 // requests without x-request-id seen so far
}

func setup(p *sdk.Plugin[Config]) (sdk.HTTPFactory, error) {
	redact := append(lowerAll(p.Config.RedactHeaders), alwaysRedacted...)
	pl := &plugin{
		Plugin:          p,
		requestHeaders:  lowerAll(p.Config.RequestHeaders),
		responseHeaders: lowerAll(p.Config.ResponseHeaders),
		requests:        p.Metrics.Counter("requests_total"),
		sampledOut:      p.Metrics.Counter("sampled_out_total"),
		threshold:       uint64(p.Config.SampleRate*sampleBuckets + 0.5),
	}
	pl.redactRequest = marks(pl.requestHeaders, redact)
	pl.redactResponse = marks(pl.responseHeaders, redact)
	return func(uint32) types.HttpContext { return &httpContext{p: pl} }, nil
}

// marks reports, for each name, whether it is in set.
func marks(names, set []string) []bool {
	out := make([]bool, len(names))
	for i, n := range names {
		out[i] = slices.Contains(set, n)
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

// Bucket is the sampling bucket (0..9999) of a request id: FNV-1a 64.
func Bucket(requestID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(requestID))
	return h.Sum64() % sampleBuckets
}

// httpContext collects what one request's log line needs as the stream
// passes, and writes the line when the stream is done.
type httpContext struct {
	types.DefaultHttpContext
	p *plugin
	// start is the wall clock at the request headers, in Unix nanoseconds.
	// Not Envoy's request.time property: each property read costs the Go
	// guest a re-entry (the host allocates in guest memory), several
	// microseconds, for a few microseconds of accuracy. Not time.Time: its
	// methods bring ~60 KB of formatting and zone code into the module.
	start    int64
	id       string
	fields   []sdk.Field
	status   int64
	bytesIn  uint64
	bytesOut uint64
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.start = time.Now().UnixNano()
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		h.p.Log.Warn("cannot read request headers", sdk.Err(err))
	}
	h.fields = make([]sdk.Field, 0, 10+len(h.p.requestHeaders)+len(h.p.responseHeaders))
	for _, key := range []string{":method", ":path", ":authority"} {
		v, _ := sdk.Header(headers, key)
		h.fields = append(h.fields, sdk.String(key[1:], v))
	}
	h.id, _ = sdk.Header(headers, "x-request-id")
	h.fields = append(h.fields, sdk.String("request_id", h.id))
	if tp, ok := sdk.Header(headers, "traceparent"); ok {
		h.fields = append(h.fields, sdk.String("traceparent", tp))
	}
	h.fields = appendHeaders(h.fields, "req.", h.p.requestHeaders, h.p.redactRequest, headers)
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestBody(size int, _ bool) types.Action {
	h.bytesIn += uint64(size)
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if len(h.p.responseHeaders) == 0 {
		// One value is cheaper to fetch than the whole map.
		if s, ok := sdk.ResponseHeader(":status"); ok {
			h.status = parseStatus(s)
		}
		return types.ActionContinue
	}
	headers, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		h.p.Log.Warn("cannot read response headers", sdk.Err(err))
	}
	if s, ok := sdk.Header(headers, ":status"); ok {
		h.status = parseStatus(s)
	}
	h.fields = appendHeaders(h.fields, "resp.", h.p.responseHeaders, h.p.redactResponse, headers)
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
	if h.fields == nil { // never saw request headers
		return
	}
	if !h.p.sampled(h.id) {
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
	h.fields = append(h.fields,
		sdk.Int("status", h.status),
		sdk.Int("duration_us", d/1000),
		sdk.Uint("bytes_in", h.bytesIn),
		sdk.Uint("bytes_out", h.bytesOut),
	)
	h.p.Log.Info("access", h.fields...)
}

func appendHeaders(fields []sdk.Field, prefix string, names []string, redact []bool, headers [][2]string) []sdk.Field {
	for i, name := range names {
		v, ok := sdk.Header(headers, name)
		if !ok {
			continue
		}
		if redact[i] {
			v = Redacted
		}
		fields = append(fields, sdk.String(prefix+name, v))
	}
	return fields
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
