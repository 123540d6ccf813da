package main

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
)

var target = sdktest.Target{Package: "filters/logging", Native: filter.VMContext()}

func request(path string, extra ...[2]string) [][2]string {
	return append([][2]string{{":method", "POST"}, {":path", path}, {":authority", "api.example.com"}}, extra...)
}

func ok(extra ...[2]string) [][2]string {
	return append([][2]string{{":status", "200"}}, extra...)
}

func le64(n int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(n)) }

// accessLine returns the one access-log line as a map, failing otherwise.
func accessLine(t testing.TB, r *sdktest.Result) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, l := range r.InfoLogs {
		if !strings.Contains(l, `"msg":"access"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access line is not JSON: %v: %q", err, l)
		}
		found = append(found, m)
	}
	if len(found) != 1 {
		t.Fatalf("%d access lines, want 1: %q", len(found), r.InfoLogs)
	}
	return found[0]
}

func noAccessLine(t testing.TB, r *sdktest.Result) {
	t.Helper()
	for _, l := range r.InfoLogs {
		if strings.Contains(l, `"msg":"access"`) {
			t.Fatalf("unexpected access line %q", l)
		}
	}
}

// want checks that the line has these keys with these values (numbers as float64).
func want(kv map[string]any) func(t testing.TB, r *sdktest.Result) {
	return func(t testing.TB, r *sdktest.Result) {
		line := accessLine(t, r)
		for k, v := range kv {
			if got, present := line[k]; !present || got != v {
				t.Errorf("%s = %#v (present %v), want %#v; line %v", k, got, present, v, line)
			}
		}
	}
}

// idInBucket finds a request id whose sampling bucket is below (in) or at
// or above (out) limit, computing FNV-1a independently of the filter.
func idInBucket(t testing.TB, limit uint64, in bool) string {
	for i := 0; ; i++ {
		id := "req-" + strconv.Itoa(i)
		h := fnv.New64a()
		h.Write([]byte(id))
		if (h.Sum64()%10000 < limit) == in {
			return id
		}
	}
}

func TestLogging(t *testing.T) {
	sampledIn := idInBucket(t, 2500, true)
	sampledOut := idInBucket(t, 2500, false)
	hugeUA := strings.Repeat("ü\"\\\x01", 16384)
	sdktest.Run(t, target, []sdktest.Case{
		{
			Name:            "one JSON line with the request's facts",
			RequestHeaders:  request("/v1/items?id=7", [2]string{"x-request-id", "abc-123"}, [2]string{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
			RequestBody:     []byte("0123456789"),
			ResponseHeaders: ok(),
			ResponseBody:    []byte("hello"),
			Chunk:           3,
			Want:            sdktest.Want{Metrics: map[string]uint64{"logging_requests_total": 1}},
			Check: func(t testing.TB, r *sdktest.Result) {
				want(map[string]any{
					"level": "info", "filter": "logging", "method": "POST", "path": "/v1/items?id=7", "authority": "api.example.com",
					"status": float64(200), "bytes_in": float64(10), "bytes_out": float64(5), "request_id": "abc-123",
					"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				})(t, r)
				if _, ok := accessLine(t, r)["duration_us"].(float64); !ok {
					t.Error("no duration_us")
				}
			},
		},
		{
			Name:           "traceparent passes through unchanged",
			RequestHeaders: request("/", [2]string{"traceparent", "00-abc-def-01"}),
			Want:           sdktest.Want{RequestHeaders: [][2]string{{"traceparent", "00-abc-def-01"}}},
		},
		{
			Name:            "configured headers logged, credentials redacted",
			Config:          `{"request_headers":["User-Agent","authorization","Cookie","x-api-key","x-absent"],"response_headers":["content-type","set-cookie"],"redact_headers":["X-API-Key"]}`,
			RequestHeaders:  request("/", [2]string{"user-agent", "curl/8"}, [2]string{"Authorization", "Bearer secret"}, [2]string{"cookie", "s=1"}, [2]string{"x-api-key", "k"}),
			ResponseHeaders: ok([2]string{"content-type", "text/plain"}, [2]string{"set-cookie", "s=2"}),
			Check: func(t testing.TB, r *sdktest.Result) {
				want(map[string]any{
					"req.user-agent": "curl/8", "req.authorization": Redacted, "req.cookie": Redacted, "req.x-api-key": Redacted,
					"resp.content-type": "text/plain", "resp.set-cookie": Redacted,
				})(t, r)
				line := accessLine(t, r)
				if _, present := line["req.x-absent"]; present {
					t.Error("absent header logged")
				}
				for _, l := range r.InfoLogs {
					if strings.Contains(l, "secret") || strings.Contains(l, "s=1") || strings.Contains(l, "s=2") {
						t.Errorf("credential leaked: %q", l)
					}
				}
			},
		},
		{
			Name:            "header names match in any case, the first of repeated headers wins",
			Config:          `{"request_headers":["user-agent"],"response_headers":["content-type"]}`,
			RequestHeaders:  request("/", [2]string{"User-Agent", "first"}, [2]string{"user-agent", "second"}, [2]string{"X-Request-ID", "id-1"}),
			ResponseHeaders: ok([2]string{"Content-Type", "a"}, [2]string{"content-type", "b"}),
			Check:           want(map[string]any{"req.user-agent": "first", "resp.content-type": "a", "request_id": "id-1"}),
		},
		{
			Name:           "response headers configured but no response: no resp keys",
			Config:         `{"response_headers":["content-type"]}`,
			RequestHeaders: request("/"),
			Check: func(t testing.TB, r *sdktest.Result) {
				want(map[string]any{"status": float64(0), "method": "POST"})(t, r)
				if _, present := accessLine(t, r)["resp.content-type"]; present {
					t.Error("resp.content-type logged without a response")
				}
			},
		},
		{
			Name:            "duration is the clock from request headers to stream end",
			RequestHeaders:  request("/"),
			ResponseHeaders: ok(),
			Check: func(t testing.TB, r *sdktest.Result) {
				if d, ok := accessLine(t, r)["duration_us"].(float64); !ok || d < 0 || d > 60e6 {
					t.Errorf("duration_us = %v, want 0..60s", d)
				}
			},
		},
		{
			Name:           "status from response.code when no response passed the filter",
			Properties:     map[string][]byte{"response.code": le64(503)},
			RequestHeaders: request("/"),
			Check:          want(map[string]any{"status": float64(503)}),
		},
		{
			Name:           "no response at all logs status 0",
			RequestHeaders: request("/"),
			Check:          want(map[string]any{"status": float64(0), "bytes_out": float64(0)}),
		},
		{
			Name:            "sample_rate 0 logs nothing but counts",
			Config:          `{"sample_rate":0}`,
			RequestHeaders:  request("/", [2]string{"x-request-id", "a"}),
			ResponseHeaders: ok(),
			Want:            sdktest.Want{Metrics: map[string]uint64{"logging_requests_total": 1, "logging_sampled_out_total": 1}},
			Check:           func(t testing.TB, r *sdktest.Result) { noAccessLine(t, r) },
		},
		{
			Name:            "request id hashed below the rate is logged",
			Config:          `{"sample_rate":0.25}`,
			RequestHeaders:  request("/", [2]string{"x-request-id", sampledIn}),
			ResponseHeaders: ok(),
			Check:           want(map[string]any{"request_id": sampledIn}),
		},
		{
			Name:            "request id hashed above the rate is dropped",
			Config:          `{"sample_rate":0.25}`,
			RequestHeaders:  request("/", [2]string{"x-request-id", sampledOut}),
			ResponseHeaders: ok(),
			Want:            sdktest.Want{Metrics: map[string]uint64{"logging_sampled_out_total": 1}},
			Check:           func(t testing.TB, r *sdktest.Result) { noAccessLine(t, r) },
		},
		{
			Name:           "first request without an id is logged at any rate above 0",
			Config:         `{"sample_rate":0.01}`,
			RequestHeaders: request("/"),
			Check:          want(map[string]any{"request_id": ""}),
		},
		{
			Name:           "huge and hostile header values still make one valid JSON line",
			Config:         `{"request_headers":["user-agent"]}`,
			RequestHeaders: request("/\u2028\n\"x\xff", [2]string{"user-agent", hugeUA}),
			Check: func(t testing.TB, r *sdktest.Result) {
				want(map[string]any{"req.user-agent": hugeUA, "path": "/\u2028\n\"x\uFFFD"})(t, r)
			},
		},
		{Name: "sample_rate above 1", Config: `{"sample_rate":1.5}`, Want: sdktest.Want{StartFails: true, Fields: []string{"sample_rate"}}},
		{Name: "sample_rate negative", Config: `{"sample_rate":-0.1}`, Want: sdktest.Want{StartFails: true, Fields: []string{"sample_rate"}}},
		{Name: "sample_rate not a number", Config: `{"sample_rate":"half"}`, Want: sdktest.Want{StartFails: true, Fields: []string{"sample_rate"}}},
		{Name: "header list not a list", Config: `{"request_headers":"user-agent"}`, Want: sdktest.Want{StartFails: true, Fields: []string{"request_headers"}}},
		{
			Name:   "every bad header name and duplicate named",
			Config: `{"request_headers":["ok","bad header",""],"response_headers":["a","A"],"redact_headers":["x:y"]}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"request_headers[1]", "request_headers[2]", "response_headers[1]", "redact_headers[0]"}},
		},
		{Name: "unknown field", Config: `{"sample_rate":1,"sampling":0.5}`, Want: sdktest.Want{StartFails: true, Fields: []string{"sampling"}}},
		{Name: "not an object", Config: `[1]`, Want: sdktest.Want{StartFails: true, Fields: []string{"(root)"}}},
	})
}

// TestBucketIsFNV1a: the filter's in-place hash is hash/fnv's FNV-1a 64, so
// that buckets agree with any other component that samples the same way.
func TestBucketIsFNV1a(t *testing.T) {
	tests := []struct{ name, id string }{
		{name: "empty", id: ""},
		{name: "short", id: "a"},
		{name: "uuid", id: "3f0b8c0e-8f5e-4c4a-9a57-1c2b5e7d9f00"},
		{name: "bytes above ASCII and NUL", id: "ü\x00\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fnv.New64a()
			h.Write([]byte(tt.id))
			if got, want := Bucket(tt.id), h.Sum64()%10000; got != want {
				t.Errorf("Bucket(%q) = %d, want %d", tt.id, got, want)
			}
		})
	}
}

func TestUnkeyedSamplingSpreadsEvenly(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		logged string // request n logged?, for n = 0..9
	}{
		{name: "half", rate: 0.5, logged: "x.x.x.x.x."},
		{name: "three in ten", rate: 0.3, logged: "x...x..x.."},
		{name: "all", rate: 1, logged: "xxxxxxxxxx"},
		{name: "none", rate: 0, logged: ".........."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &plugin{threshold: uint64(tt.rate*sampleBuckets + 0.5)}
			var got []byte
			for range 10 {
				if p.sampled("") {
					got = append(got, 'x')
				} else {
					got = append(got, '.')
				}
			}
			if string(got) != tt.logged {
				t.Errorf("got %s, want %s", got, tt.logged)
			}
		})
	}
}

func BenchmarkRequest(b *testing.B) {
	c := sdktest.Case{
		Name:            "typical",
		Config:          `{"request_headers":["user-agent","authorization"],"response_headers":["content-type"]}`,
		RequestHeaders:  request("/v1/items?id=7", [2]string{"x-request-id", "abc-123"}, [2]string{"user-agent", "curl/8"}, [2]string{"authorization", "Bearer x"}),
		ResponseHeaders: ok([2]string{"content-type", "application/json"}),
	}
	for _, mode := range sdktest.Modes {
		b.Run(string(mode), func(b *testing.B) { sdktest.Bench(b, target, mode, c) })
	}
}

func BenchmarkStartup(b *testing.B) {
	sdktest.BenchStartup(b, target.Package, `{"sample_rate":0.5}`)
}
