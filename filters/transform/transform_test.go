package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
)

var target = sdktest.Target{Package: "filters/transform", Native: filter.VMContext()}

func post(path string, extra ...[2]string) [][2]string {
	return append([][2]string{{":method", "POST"}, {":path", path}, {":authority", "example.com"}, {"content-type", "application/json"}}, extra...)
}

func status(code int, extra ...[2]string) [][2]string {
	return append([][2]string{{":status", strconv.Itoa(code)}}, extra...)
}

// actions checks the actions the filter returned for the request headers
// and each request body frame.
func actions(headers types.Action, body ...types.Action) func(t testing.TB, r *sdktest.Result) {
	return func(t testing.TB, r *sdktest.Result) {
		if r.RequestHeadersAction != headers {
			t.Errorf("request headers action %v, want %v", r.RequestHeadersAction, headers)
		}
		if len(r.RequestBodyActions) != len(body) {
			t.Fatalf("body actions %v, want %v", r.RequestBodyActions, body)
		}
		for i := range body {
			if r.RequestBodyActions[i] != body[i] {
				t.Errorf("body actions %v, want %v", r.RequestBodyActions, body)
			}
		}
	}
}

const (
	cont  = types.ActionContinue
	pause = types.ActionPause
)

const bodyRules = `"body":{"rename":[{"from":"user.name","to":"user.login"}],"remove":["debug","user.password"],"set":[{"path":"meta.source","value":"edge"},{"path":"n","value":[1,{"x":null}]}]}`

func TestTransform(t *testing.T) {
	in := `{"user":{"name":"ann","password":"pw","id":12345678901234567890},"debug":true,"z":1.50}`
	out := `{"user":{"id":12345678901234567890,"login":"ann"},"z":1.50,"meta":{"source":"edge"},"n":[1,{"x":null}]}`
	huge := strings.Repeat("v", 1<<20)
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	sdktest.Run(t, target, []sdktest.Case{
		{
			Name: "request headers: remove, rename, set, add (names any case)",
			Config: `{"request":{"headers":{"remove":["X-Debug"],"rename":[{"from":"X-User","to":"x-client-user"}],` +
				`"set":[{"name":"x-env","value":"prod"}],"add":[{"name":"X-Via","value":"wasmfleet"}]}}}`,
			RequestHeaders: post("/", [2]string{"x-debug", "1"}, [2]string{"x-user", "ann"}, [2]string{"x-env", "dev"}),
			Want: sdktest.Want{
				RequestHeaders:   [][2]string{{"x-client-user", "ann"}, {"x-env", "prod"}, {"x-via", "wasmfleet"}},
				NoRequestHeaders: []string{"x-debug", "x-user"},
			},
			Check: actions(cont),
		},
		{
			Name:           "rename onto an existing header replaces it; absent source is a no-op",
			Config:         `{"request":{"headers":{"rename":[{"from":"a","to":"b"},{"from":"missing","to":"c"}]}}}`,
			RequestHeaders: post("/", [2]string{"a", "new"}, [2]string{"b", "old"}),
			Want:           sdktest.Want{RequestHeaders: [][2]string{{"b", "new"}}, NoRequestHeaders: []string{"a", "c"}},
		},
		{
			Name:            "response headers edited",
			Config:          `{"response":{"headers":{"remove":["server"],"set":[{"name":"cache-control","value":"no-store"}]}}}`,
			RequestHeaders:  post("/"),
			ResponseHeaders: status(200, [2]string{"server", "upstream/1.0"}, [2]string{"cache-control", "max-age=60"}),
			Want: sdktest.Want{
				ResponseHeaders:   [][2]string{{"cache-control", "no-store"}},
				NoResponseHeaders: []string{"server"},
			},
		},
		{
			Name:           "megabyte header values survive set and rename",
			Config:         `{"request":{"headers":{"rename":[{"from":"x-big","to":"x-moved"}],"set":[{"name":"x-set","value":"` + huge + `"}]}}}`,
			RequestHeaders: post("/", [2]string{"x-big", huge}),
			Want:           sdktest.Want{RequestHeaders: [][2]string{{"x-moved", huge}, {"x-set", huge}}, NoRequestHeaders: []string{"x-big"}},
		},
		{
			Name:           "path prefix rewritten, query kept",
			Config:         `{"request":{"path_prefix":{"from":"/api/v1/","to":"/v1/"}}}`,
			RequestHeaders: post("/api/v1/items?id=7"),
			Want: sdktest.Want{
				RequestHeaders: [][2]string{{":path", "/v1/items?id=7"}},
				Metrics:        map[string]uint64{"transform_path_rewritten_total": 1},
			},
		},
		{
			Name:           "path without the prefix untouched",
			Config:         `{"request":{"path_prefix":{"from":"/api/v1/","to":"/v1/"}}}`,
			RequestHeaders: post("/api/v2/items"),
			Want:           sdktest.Want{RequestHeaders: [][2]string{{":path", "/api/v2/items"}}},
		},
		{
			// The headers go on (a Pause there would stop the body too on
			// Envoy); the body is buffered from its own callback.
			Name:           "request JSON body edited across frames; headers not held; content-length removed",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/", [2]string{"content-length", strconv.Itoa(len(in))}),
			RequestBody:    []byte(in),
			Chunk:          32,
			Want: sdktest.Want{
				RequestBody:      sdktest.Body(out),
				NoRequestHeaders: []string{"content-length"},
				Metrics:          map[string]uint64{"transform_request_body_edited_total": 1},
			},
			Check: actions(cont, pause, pause, cont),
		},
		{
			Name:           "set through a non-object and rename to an unreachable path change nothing",
			Config:         `{"request":{"body":{"set":[{"path":"s.x","value":1}],"rename":[{"from":"a","to":"s.y"}]}}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(`{"s":"str","a":1}`),
			Want:           sdktest.Want{RequestBody: sdktest.Body(`{"s":"str","a":1}`)},
		},
		{
			Name:           "non-object body root is left as it is",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(`[1, 2]`),
			Want:           sdktest.Want{RequestBody: sdktest.Body(`[1,2]`)},
		},
		{
			Name:            "response JSON body edited",
			Config:          `{"response":{"body":{"remove":["secret"]}}}`,
			RequestHeaders:  post("/"),
			ResponseHeaders: status(200, [2]string{"content-length", "27"}),
			ResponseBody:    []byte(`{"secret":"s","ok":true}   `),
			Want: sdktest.Want{
				ResponseBody:      sdktest.Body(`{"ok":true}`),
				NoResponseHeaders: []string{"content-length"},
				Metrics:           map[string]uint64{"transform_response_body_edited_total": 1},
			},
			Check: func(t testing.TB, r *sdktest.Result) {
				if r.ResponseHeadersAction != cont {
					t.Errorf("response headers held (%v): on Envoy the body would never come", r.ResponseHeadersAction)
				}
			},
		},
		{
			Name:           "invalid JSON request body rejected with 400 and a JSON error",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(`{"user": nope}`),
			Want: sdktest.Want{
				Local:   &sdktest.Local{Status: 400, Headers: [][2]string{{"content-type", "application/json"}}},
				Metrics: map[string]uint64{"transform_body_rejected_total": 1},
			},
			Check: func(t testing.TB, r *sdktest.Result) {
				if !strings.HasPrefix(string(r.Local.Data), `{"error":"request_body_not_json","detail":"invalid JSON at offset 9`) {
					t.Errorf("body %s", r.Local.Data)
				}
			},
		},
		{
			Name:           "invalid JSON passed untouched and counted in pass mode",
			Config:         `{"on_body_error":"pass","request":{` + bodyRules + `}}`,
			RequestHeaders: post("/", [2]string{"content-length", "13"}),
			RequestBody:    []byte(`not json at all`),
			Chunk:          4,
			Want: sdktest.Want{
				RequestBody:      sdktest.Body(`not json at all`),
				NoRequestHeaders: []string{"content-length"},
				Metrics:          map[string]uint64{"transform_body_passed_total": 1},
			},
		},
		{
			Name:           "JSON nested beyond the parser's depth is not JSON",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(deep),
			Want:           sdktest.Want{Local: &sdktest.Local{Status: 400}},
		},
		{
			Name:           "request body over the cap rejected with 413 before it is all buffered",
			Config:         `{"max_body_bytes":16,"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(`{"a":"0123456789","b":"0123456789","c":"0123456789"}`),
			Chunk:          10,
			Want: sdktest.Want{
				Local: &sdktest.Local{Status: 413, Body: `{"error":"request_body_too_large","detail":"body exceeds 16 bytes"}`},
			},
			Check: actions(cont, pause, pause),
		},
		{
			Name:           "request body over the cap forwarded whole in pass mode",
			Config:         `{"max_body_bytes":16,"on_body_error":"pass","request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte(`{"a":"0123456789","b":"0123456789","c":"0123456789"}`),
			Chunk:          10,
			Want: sdktest.Want{
				RequestBody: sdktest.Body(`{"a":"0123456789","b":"0123456789","c":"0123456789"}`),
				Metrics:     map[string]uint64{"transform_body_passed_total": 1},
			},
			Check: actions(cont, pause, cont, cont, cont, cont, cont),
		},
		{
			Name:            "bad response body answered with 502",
			Config:          `{"response":{"body":{"remove":["x"]}}}`,
			RequestHeaders:  post("/"),
			ResponseHeaders: status(200),
			ResponseBody:    []byte(`<html>`),
			Want:            sdktest.Want{Local: &sdktest.Local{Status: 502, Body: `{"error":"response_body_not_json","detail":"invalid JSON at offset 0: unexpected byte 0x3c"}`}},
		},
		{
			Name:           "without body rules bodies stream through unbuffered",
			Config:         `{"request":{"headers":{"set":[{"name":"x","value":"y"}]}}}`,
			RequestHeaders: post("/", [2]string{"content-length", "9"}),
			RequestBody:    []byte(`not json!`),
			Chunk:          3,
			Want:           sdktest.Want{RequestBody: sdktest.Body(`not json!`), RequestHeaders: [][2]string{{"content-length", "9"}}},
			Check:          actions(cont, cont, cont, cont),
		},
		{
			Name:           "empty body with body rules is forwarded",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			RequestBody:    []byte{},
			Want:           sdktest.Want{RequestBody: sdktest.Body("")},
			Check:          actions(cont, cont),
		},
		{
			Name:           "request without a body is not held",
			Config:         `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"),
			Check:          actions(cont),
		},
		{
			Name:   "pseudo-header and bad value named",
			Config: `{"request":{"headers":{"set":[{"name":":path","value":"/x"}],"add":[{"name":"x","value":"a\nb"}],"remove":[""],"rename":[{"from":"a b","to":"c"}]}}}`,
			Want: sdktest.Want{StartFails: true, Fields: []string{
				"request.headers.set[0].name", "request.headers.add[0].value", "request.headers.remove[0]", "request.headers.rename[0].from",
			}},
		},
		{
			Name:   "bad path prefix and body paths named",
			Config: `{"request":{"path_prefix":{"from":"api","to":"/v1?x"},"body":{"remove":["a..b"],"set":[{"path":".a"}],"rename":[{"from":"","to":"b."}]}}}`,
			Want: sdktest.Want{StartFails: true, Fields: []string{
				"request.path_prefix.from", "request.path_prefix.to", "request.body.remove[0]", "request.body.set[0].path",
				"request.body.rename[0].from", "request.body.rename[0].to",
			}},
		},
		{
			Name:   "limits and modes named",
			Config: `{"max_body_bytes":0,"on_body_error":"drop"}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"max_body_bytes", "on_body_error"}},
		},
		{
			Name:   "path_prefix is for requests only",
			Config: `{"response":{"path_prefix":{"from":"/a","to":"/b"}}}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"response.path_prefix"}},
		},
		{
			Name:   "wrong types named with their paths",
			Config: `{"request":{"headers":{"remove":"x","set":[{"name":1}]}},"max_body_bytes":"1MB"}`,
			Want:   sdktest.Want{StartFails: true, Fields: []string{"request.headers.remove", "request.headers.set[0].name", "max_body_bytes"}},
		},
	})
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzConfig: no plugin configuration panics decoding or validation, and
// every refusal names a field.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"request":{"headers":{"set":[{"name":"x","value":"y"}]},"path_prefix":{"from":"/a","to":"/b"},` + bodyRules + `}}`,
		`{"response":{"body":{"set":[{"path":"a..b","value":{"deep":[1]}}]}},"max_body_bytes":-1}`,
		`{"request":{"headers":{"rename":[{"from":":x"}]}}}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := sdk.DecodeConfig(data, DefaultConfig)
		for _, p := range sdk.Problems(err) {
			var fe *sdk.FieldError
			if !errors.As(p, &fe) || fe.Field == "" {
				t.Fatalf("problem without a field: %v", p)
			}
		}
	})
}

func BenchmarkRequest(b *testing.B) {
	headerRules := `{"request":{"headers":{"remove":["x-debug"],"rename":[{"from":"x-user","to":"x-client-user"}],"set":[{"name":"x-env","value":"prod"}],"add":[{"name":"x-via","value":"wasmfleet"}]},"path_prefix":{"from":"/api/","to":"/"}},"response":{"headers":{"remove":["server"]}}}`
	body := []byte(`{"user":{"name":"ann","password":"pw","id":42},"debug":true,"items":[1,2,3]}`)
	cases := []sdktest.Case{
		{
			Name: "headers", Config: headerRules,
			RequestHeaders:  post("/api/items", [2]string{"x-debug", "1"}, [2]string{"x-user", "ann"}),
			ResponseHeaders: status(200, [2]string{"server", "u"}),
		},
		{
			Name: "json_body", Config: `{"request":{` + bodyRules + `}}`,
			RequestHeaders: post("/"), RequestBody: body, ResponseHeaders: status(200),
		},
	}
	for _, c := range cases {
		for _, mode := range sdktest.Modes {
			b.Run(c.Name+"/"+string(mode), func(b *testing.B) { sdktest.Bench(b, target, mode, c) })
		}
	}
}

func BenchmarkStartup(b *testing.B) {
	sdktest.BenchStartup(b, target.Package, `{"request":{`+bodyRules+`}}`)
}
