package standin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// bodywait is the bodywait guest in slot0, with the plugin config's
// allow_on_headers_stop_iteration set to allow (nil: unset).
func bodywait(t *testing.T, allow *wrapperspb.BoolValue) *core.TypedExtensionConfig {
	tec := xdstest.Wasm(t, slot0, xdstest.Filter{Name: "bodywait", Inline: guest(t, "bodywait")})
	w := &wasmfilterpb.Wasm{}
	if err := tec.GetTypedConfig().UnmarshalTo(w); err != nil {
		t.Fatal(err)
	}
	w.Config.AllowOnHeadersStopIteration = allow
	tec.TypedConfig = xdstest.Any(t, w)
	return tec
}

// A filter that pauses its request headers to wait for the body gets the
// body only with allow_on_headers_stop_iteration; without it Envoy stops
// all iteration and the request hangs until the client gives up.
func TestPauseInHeadersStopsTheBody(t *testing.T) {
	tests := []struct {
		name  string
		allow *wrapperspb.BoolValue
		hangs bool
	}{
		{name: "unset: StopAllIterationAndWatermark", hangs: true},
		{name: "false: StopAllIterationAndWatermark", allow: wrapperspb.Bool(false), hangs: true},
		{name: "true: StopIteration", allow: wrapperspb.Bool(true)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.xds.Set(t, nodeID, e.config(t, bodywait(t, tc.allow), xdstest.Noop(t, slot1)))
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)

			// Without a body there is nothing to wait for.
			if r := get(t, addr, "/"); r.status != http.StatusOK || r.body != "upstream\n" {
				t.Fatalf("GET: %d %q, want the upstream's 200", r.status, r.body)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if tc.hangs {
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("POST answered %d %q, want no answer before the client's timeout", resp.StatusCode, b)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("POST: %v, want the client's timeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != "got 5 bytes\n" {
				t.Fatalf("POST: %d %q, want 200 %q", resp.StatusCode, b, "got 5 bytes\n")
			}
		})
	}
}

// The transform filter edits a request body without
// allow_on_headers_stop_iteration: it lets the headers go on and buffers
// the body from its body callback, so the request does not hang as it
// would if the filter paused its headers.
func TestTransformBodyWithoutStopIteration(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body) // echo what reached the upstream
	}))
	t.Cleanup(up.Close)
	e := &env{xds: xdstest.Start(t), upstream: up, modules: newModuleServer(t)}
	transform := xdstest.Wasm(t, slot0, xdstest.Filter{
		Name:   "transform",
		Config: `{"request":{"body":{"set":[{"path":"edited","value":true}]}}}`,
		Inline: wasmtest.Module(t, "filters/transform"),
	})
	e.xds.Set(t, nodeID, e.config(t, transform, xdstest.Noop(t, slot1)))
	n := e.startNode(t, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // the first request is slow under -race
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+listenerAddr(t, n)+"/", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `{"a":1,"edited":true}`; resp.StatusCode != http.StatusOK || string(b) != want {
		t.Fatalf("POST: %d %q, want 200 %q (the edited body, echoed)", resp.StatusCode, b, want)
	}
}

// A local reply after the response headers went to the client cannot be
// sent: Envoy resets the stream. The transform filter rejecting a response
// body that is not JSON shows it: the client gets the upstream's status and
// then a broken body, not a 502.
func TestLocalReplyAfterResponseHeadersResets(t *testing.T) {
	e := newEnv(t) // the upstream answers "upstream\n", not JSON
	transform := xdstest.Wasm(t, slot0, xdstest.Filter{
		Name:   "transform",
		Config: `{"response":{"body":{"remove":["x"]}}}`,
		Inline: wasmtest.Module(t, "filters/transform"),
	})
	e.xds.Set(t, nodeID, e.config(t, transform, xdstest.Noop(t, slot1)))
	n := e.startNode(t, nil)

	resp, err := client.Get("http://" + listenerAddr(t, n) + "/")
	if err != nil {
		t.Fatalf("GET: %v, want the response headers", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Fatalf("GET: %d %q (read error %v), want 200 and a reset body", resp.StatusCode, b, err)
	}
}
