package sdktest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest/internal/demofilter"
)

var demo = sdktest.Target{Package: "sdk/sdktest/testdata/demo", Native: demofilter.Filter.VMContext()}

func get(path string) [][2]string {
	return [][2]string{{":method", "GET"}, {":path", path}, {":authority", "example.com"}}
}

func TestDemo(t *testing.T) {
	sdktest.Run(t, demo, []sdktest.Case{
		{
			Name:            "tag added, metrics counted, JSON log line",
			Config:          `{"tag":"blue","limit":3}`,
			RequestHeaders:  get("/a?x=1"),
			ResponseHeaders: [][2]string{{":status", "200"}},
			Want: sdktest.Want{
				RequestHeaders: [][2]string{{"x-demo-tag", "blue"}},
				InfoLogs:       []string{`{"level":"info","filter":"demo","msg":"request","path":"/a?x=1","limit":3,"ok":true}`},
				Metrics:        map[string]uint64{"demo_requests_total": 1, "demo_last_path_len": 6, "demo_paths_seen": 1, "demo_path_len": 6},
			},
			Check: func(t testing.TB, r *sdktest.Result) {
				if r.RequestHeadersAction != types.ActionContinue {
					t.Errorf("request headers action %v", r.RequestHeadersAction)
				}
				for _, line := range r.InfoLogs {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Errorf("log line is not JSON: %q: %v", line, err)
					}
				}
			},
		},
		{
			Name:           "denied by query parameter with JSON error",
			Config:         `{"tag":"x","deny":"block me"}`,
			RequestHeaders: get("/a?b=1&block+me=yes"),
			Want: sdktest.Want{
				Local: &sdktest.Local{
					Status:  403,
					Body:    `{"error":"denied","detail":"query parameter block me"}`,
					Headers: [][2]string{{"content-type", "application/json"}, {"x-demo", "1"}},
				},
				NoRequestHeaders: []string{"x-demo-tag"},
				Metrics:          map[string]uint64{"demo_requests_total": 1, "demo_denied_total": 1},
			},
		},
		{
			Name:   "missing tag and negative limit both named",
			Config: `{"limit":-1}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"tag", "limit"}},
		},
		{
			Name:   "no configuration at all fails on the required tag",
			Config: "",
			Want:   sdktest.Want{StartFails: true, Fields: []string{"tag"}},
		},
		{
			Name:   "unknown field",
			Config: `{"tag":"x","colour":"red"}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"colour"}},
		},
		{
			Name:   "wrong type",
			Config: `{"tag":"x","limit":"three"}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"limit"}},
		},
		{
			Name:   "not JSON",
			Config: `tag: x`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"(root)"}},
		},
		{
			Name:           "body frames are forwarded as they come",
			Config:         `{"tag":"x"}`,
			RequestHeaders: get("/upload"),
			RequestBody:    []byte("0123456789"),
			Chunk:          3,
			Want:           sdktest.Want{RequestBody: sdktest.Body("0123456789")},
			Check: func(t testing.TB, r *sdktest.Result) {
				if len(r.RequestBodyActions) != 4 {
					t.Errorf("%d body callbacks, want 4", len(r.RequestBodyActions))
				}
			},
		},
		{
			Name:           "huge header value is logged as valid JSON",
			Config:         `{"tag":"x"}`,
			RequestHeaders: get("/" + strings.Repeat("\"\\\n\x01é", 20000)),
			Check: func(t testing.TB, r *sdktest.Result) {
				if len(r.InfoLogs) == 0 {
					t.Fatal("no info logs")
				}
				var v struct{ Path string }
				last := r.InfoLogs[len(r.InfoLogs)-1]
				if err := json.Unmarshal([]byte(last), &v); err != nil {
					t.Fatalf("log line is not JSON: %v", err)
				}
				if v.Path != "/"+strings.Repeat("\"\\\n\x01é", 20000) {
					t.Errorf("path not preserved through the log line")
				}
			},
		},
	})
}

func BenchmarkDemoRequest(b *testing.B) {
	c := sdktest.Case{Name: "pass", Config: `{"tag":"x"}`, RequestHeaders: get("/a?x=1"), ResponseHeaders: [][2]string{{":status", "200"}}}
	for _, mode := range sdktest.Modes {
		b.Run(string(mode), func(b *testing.B) { sdktest.Bench(b, demo, mode, c) })
	}
}

func BenchmarkDemoStartup(b *testing.B) {
	sdktest.BenchStartup(b, demo.Package, `{"tag":"x"}`)
}
