package hostbench_test

import (
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest/hostbench"
)

// The filters' own benchmarks (sdktest.Bench) compare native with the
// emulator; these give the per-request cost in wasmfleet's host.

var benches = []struct {
	pkg string
	c   sdktest.Case
}{
	{"internal/wasmtest/testdata/hello", sdktest.Case{
		Name:           "baseline_hello",
		RequestHeaders: [][2]string{{":method", "GET"}, {":path", "/"}},
	}},
	{"filters/logging", sdktest.Case{
		Name:            "logging",
		Config:          `{"request_headers":["user-agent","authorization"],"response_headers":["content-type"]}`,
		RequestHeaders:  [][2]string{{":method", "GET"}, {":path", "/v1/items?id=7"}, {":authority", "api"}, {"x-request-id", "abc-123"}, {"user-agent", "curl/8"}, {"authorization", "Bearer x"}},
		ResponseHeaders: [][2]string{{":status", "200"}, {"content-type", "application/json"}},
	}},
	{"filters/transform", sdktest.Case{
		Name:            "transform_headers",
		Config:          `{"request":{"headers":{"remove":["x-debug"],"rename":[{"from":"x-user","to":"x-client-user"}],"set":[{"name":"x-env","value":"prod"}],"add":[{"name":"x-via","value":"wasmfleet"}]},"path_prefix":{"from":"/api/","to":"/"}},"response":{"headers":{"remove":["server"]}}}`,
		RequestHeaders:  [][2]string{{":method", "GET"}, {":path", "/api/items"}, {":authority", "api"}, {"x-debug", "1"}, {"x-user", "ann"}},
		ResponseHeaders: [][2]string{{":status", "200"}, {"server", "u"}},
	}},
	{"filters/transform", sdktest.Case{
		Name:            "transform_json_body",
		Config:          `{"request":{"body":{"rename":[{"from":"user.name","to":"user.login"}],"remove":["debug","user.password"],"set":[{"path":"meta.source","value":"edge"}]}}}`,
		RequestHeaders:  [][2]string{{":method", "POST"}, {":path", "/"}, {":authority", "api"}, {"content-type", "application/json"}},
		RequestBody:     []byte(`{"user":{"name":"ann","password":"pw","id":42},"debug":true,"items":[1,2,3]}`),
		ResponseHeaders: [][2]string{{":status", "200"}},
	}},
}

func BenchmarkRequest(b *testing.B) {
	for _, bb := range benches {
		b.Run(bb.c.Name, func(b *testing.B) { hostbench.Bench(b, bb.pkg, bb.c) })
	}
}

func BenchmarkStartup(b *testing.B) {
	for _, pkg := range []string{"filters/logging", "filters/transform"} {
		b.Run(pkg, func(b *testing.B) { hostbench.BenchStartup(b, pkg, "") })
	}
}

// BenchmarkOp prices single building blocks in the compiled module (see
// testdata/ops); "none" is the host's own cost for a request.
func BenchmarkOp(b *testing.B) {
	for _, op := range []string{"none", "call100", "loop100", "alloc", "now", "counter", "loginfo", "line", "log", "entry", "property", "header", "headers", "headerslookup", "headermap", "json"} {
		c := sdktest.Case{
			Name:           op,
			Config:         `{"op":"` + op + `"}`,
			RequestHeaders: [][2]string{{":method", "GET"}, {":path", "/v1/items?id=7"}, {":authority", "api"}, {"x-request-id", "abc-123"}},
		}
		b.Run(op, func(b *testing.B) { hostbench.Bench(b, "sdk/sdktest/hostbench/testdata/ops", c) })
	}
}

// TestGOGCLowersMemory: the GOGC wasmfleet gives every filter's VM by
// default (config.DefaultGOGC) reaches the guest's runtime and keeps a Go
// filter's linear memory lower after 10,000 requests than Go's default.
// It logs both figures.
func TestGOGCLowersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20,000 requests")
	}
	const requests = 10_000
	for _, bb := range benches {
		if bb.pkg != "filters/logging" {
			continue // the filter whose heap grows with traffic (see README)
		}
		t.Run(bb.c.Name, func(t *testing.T) {
			without := hostbench.Memory(t, bb.pkg, bb.c, nil, requests)
			with := hostbench.Memory(t, bb.pkg, bb.c, map[string]string{"GOGC": config.DefaultGOGC}, requests)
			t.Logf("linear memory after %d requests: %.2f MiB, with GOGC=%s %.2f MiB", requests, mib(without), config.DefaultGOGC, mib(with))
			if with >= without {
				t.Fatalf("GOGC=%s: %.2f MiB, not below %.2f MiB without it", config.DefaultGOGC, mib(with), mib(without))
			}
		})
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
