package wasmhost

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
)

// TestRealFilters runs wasmfleet's own transform and logging filters, as
// compiled modules, in a chain: transform first, logging second, as a data
// plane would call them.
func TestRealFilters(t *testing.T) {
	const transformConfig = `{
	  "request": {
	    "headers": {"remove": ["x-debug"], "set": [{"name": "x-env", "value": "prod"}]},
	    "path_prefix": {"from": "/api/v1/", "to": "/v1/"},
	    "body": {"set": [{"path": "meta.source", "value": "edge"}]}
	  },
	  "response": {"headers": {"add": [{"name": "x-via", "value": "wasmfleet"}]}}
	}`
	const loggingConfig = `{"request_headers": ["x-env"], "response_headers": ["content-type"]}`
	tests := []struct {
		name       string
		body       string
		wantBody   string
		wantLocal  int
		wantStatus float64 // what logging writes as "status"
	}{
		{name: "json body edited", body: `{"a":1}`, wantBody: `{"a":1,"meta":{"source":"edge"}}`, wantStatus: 200},
		{name: "bad body rejected", body: `not json`, wantLocal: 400},
	}
	transform, logging := testModule(t, "filters/transform"), testModule(t, "filters/logging")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logRecorder
			tp := newPlugin(t, transform, PluginConfig{Name: "transform", Configuration: []byte(transformConfig)})
			lp := newPlugin(t, logging, PluginConfig{Name: "logging", Configuration: []byte(loggingConfig), Log: logs.log})
			ctx := context.Background()
			ts, err := tp.NewHTTPStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ls, err := lp.NewHTTPStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req := NewHeaders(":method", "POST", ":path", "/api/v1/items", ":authority", "shop", "x-debug", "1",
				"x-request-id", "r-1", "content-type", "application/json", "content-length", strconv.Itoa(len(tt.body)))
			// Transform lets the headers go on (a Pause would stop its
			// body too on Envoy) and buffers the body instead.
			if a, err := ts.RequestHeaders(req, false); err != nil || a != ActionContinue {
				t.Fatalf("transform request headers: %v %v, want continue", a, err)
			}
			if _, err := ls.RequestHeaders(req, false); err != nil {
				t.Fatal(err)
			}
			a, err := ts.RequestBody([]byte(tt.body), true)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLocal != 0 {
				lr := ts.LocalResponse()
				if a != ActionPause || lr == nil || lr.Status != tt.wantLocal {
					t.Fatalf("got %v, local response %+v; want a %d", a, lr, tt.wantLocal)
				}
				return
			}
			if a != ActionContinue || string(ts.Body(RequestBody)) != tt.wantBody {
				t.Fatalf("transform body: %v %q, want continue %q", a, ts.Body(RequestBody), tt.wantBody)
			}
			if p, _ := req.Get(":path"); p != "/v1/items" {
				t.Errorf(":path = %q", p)
			}
			if _, ok := req.Get("x-debug"); ok {
				t.Error("x-debug not removed")
			}
			if _, ok := req.Get("content-length"); ok {
				t.Error("content-length kept for a body about to change")
			}
			if _, err := ls.RequestBody(ts.Body(RequestBody), true); err != nil {
				t.Fatal(err)
			}
			resp := NewHeaders(":status", "200", "content-type", "text/plain")
			for _, s := range []*HTTPStream{ls, ts} { // responses run the chain backwards
				if _, err := s.ResponseHeaders(resp, true); err != nil {
					t.Fatal(err)
				}
			}
			if v, _ := resp.Get("x-via"); v != "wasmfleet" {
				t.Errorf("x-via = %q", v)
			}
			for _, s := range []*HTTPStream{ts, ls} {
				if err := s.Done(); err != nil {
					t.Fatal(err)
				}
			}
			var line map[string]any
			for _, l := range logs.all() {
				if l.level == LogInfo {
					if err := json.Unmarshal([]byte(l.msg), &line); err != nil {
						t.Fatalf("log line %q: %v", l.msg, err)
					}
				}
			}
			want := map[string]any{"msg": "access", "path": "/v1/items", "req.x-env": "prod", "resp.content-type": "text/plain",
				"request_id": "r-1", "status": tt.wantStatus, "bytes_in": float64(len(tt.wantBody))}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
		})
	}
}
