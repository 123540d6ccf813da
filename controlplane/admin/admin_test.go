package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// loop stands in for the reconcile loop behind the API: the handler's
// routing, auth and error mapping are what is under test here; the loop
// itself is tested in controller and in e2e/scenarios through this API.
type loop struct{ commands []controller.Command }

func (l *loop) Status() []controller.FilterStatus {
	return []controller.FilterStatus{{Name: "auth", Stable: types.Digest(strings.Repeat("a", 64))}}
}

func (l *loop) Do(_ context.Context, cmd controller.Command) error {
	if cmd.Filter != "auth" {
		return fmt.Errorf("rollout: %q: %w", cmd.Filter, controller.ErrUnknownFilter)
	}
	l.commands = append(l.commands, cmd)
	return nil
}

func (l *loop) DryRun(context.Context, config.Config) ([]rollout.Change, error) { return nil, nil }

type noHistory struct{}

func (noHistory) History(string) ([]types.Version, error) { return nil, nil }

func TestHandler(t *testing.T) {
	const token = "s3cret"
	l := &loop{}
	srv := httptest.NewServer(NewHandler(Config{
		Controller: l, Fleet: fleet.New(fleet.Config{}), History: noHistory{},
		Gatherer: prometheus.NewRegistry(), Token: token, Log: zaptest.NewLogger(t),
	}))
	defer srv.Close()
	tests := []struct {
		name, method, path, auth, body string
		want                           int
		wantIn                         string
	}{
		{name: "health needs no token", method: "GET", path: "/healthz", want: 200},
		{name: "metrics need no token", method: "GET", path: "/metrics", want: 200},
		{name: "status without token", method: "GET", path: "/api/v1/status", want: 401, wantIn: "bearer token"},
		{name: "status with a wrong token", method: "GET", path: "/api/v1/status", auth: "Bearer nope", want: 401},
		{name: "status", method: "GET", path: "/api/v1/status", auth: "Bearer " + token, want: 200, wantIn: `"auth"`},
		{name: "command without token changes nothing", method: "POST", path: "/api/v1/rollout/auth/pause", want: 401},
		{name: "command", method: "POST", path: "/api/v1/rollout/auth/pause", auth: "Bearer " + token, want: 200},
		{name: "unknown filter", method: "POST", path: "/api/v1/rollout/nope/pause", auth: "Bearer " + token, want: 404, wantIn: "unknown filter"},
		{name: "unknown field in the body", method: "POST", path: "/api/v1/rollout/auth/rollback", auth: "Bearer " + token, body: `{"reasn":"x"}`, want: 400},
		{name: "plan with a broken config", method: "POST", path: "/api/v1/rollout/plan", auth: "Bearer " + token, body: "mode: both\n", want: 400, wantIn: "mode"},
		{name: "history of a filter with none", method: "GET", path: "/api/v1/filters/auth/history", auth: "Bearer " + token, want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantIn) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.want, tt.wantIn)
			}
		})
	}
	if len(l.commands) != 1 || l.commands[0].Action != controller.Pause {
		t.Fatalf("commands reaching the loop: %+v, want the one authorised pause", l.commands)
	}
}

// TestStatusShowsResponseTime: the per-node part of the status carries how
// long each node took to answer its last push, per resource type.
func TestStatusShowsResponseTime(t *testing.T) {
	const ecds = resource.ExtensionConfigType
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := fleet.New(fleet.Config{Now: func() time.Time { return at }})
	s := fleet.Stream{ID: 1}
	f.StreamOpened(s)
	f.Requested(s, fleet.Identity{ID: "n1"}, fleet.Request{TypeURL: ecds})
	f.Sent(s, ecds, "v1", "1")
	at = at.Add(1500 * time.Millisecond)
	f.Requested(s, fleet.Identity{ID: "n1"}, fleet.Request{TypeURL: ecds, Version: "v1", Nonce: "1"})

	srv := httptest.NewServer(NewHandler(Config{
		Controller: &loop{}, Fleet: f, History: noHistory{}, Gatherer: prometheus.NewRegistry(), Log: zaptest.NewLogger(t),
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 1 || len(st.Nodes[0].Types) != 1 {
		t.Fatalf("status nodes = %+v, want n1 with one type", st.Nodes)
	}
	a := st.Nodes[0].Types[0].LastAnswer
	if a == nil || a.Version != "v1" || a.NACK || a.Latency != 1500*time.Millisecond {
		t.Errorf("LastAnswer = %+v, want v1 acked after 1.5s", a)
	}
}
