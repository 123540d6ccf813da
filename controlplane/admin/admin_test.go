package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// loop stands in for the reconcile loop behind the API: the handler's
// routing, auth, error mapping and wire format are what is under test here;
// the loop itself is tested in controller and in e2e/scenarios through this
// API. It knows the filters in filters; refuse, when set, is what Do
// answers for a known filter.
type loop struct {
	filters  []controller.FilterStatus
	changes  []rollout.Change
	refuse   error
	commands []controller.Command
}

// newLoop knows one filter, auth, with a stable version only.
func newLoop() *loop {
	return &loop{filters: []controller.FilterStatus{{Name: "auth", Stable: types.Digest(strings.Repeat("a", 64))}}}
}

func (l *loop) Status() []controller.FilterStatus { return l.filters }

func (l *loop) Do(_ context.Context, cmd controller.Command) error {
	if !slices.ContainsFunc(l.filters, func(f controller.FilterStatus) bool { return f.Name == cmd.Filter }) {
		return fmt.Errorf("rollout: %q: %w", cmd.Filter, controller.ErrUnknownFilter)
	}
	if l.refuse != nil {
		return l.refuse
	}
	l.commands = append(l.commands, cmd)
	return nil
}

func (l *loop) DryRun(context.Context, config.Config) ([]rollout.Change, error) {
	return l.changes, nil
}

// history is the store's history of versions, per filter, with no actions.
type history map[string][]types.Version

func (h history) History(filter string) ([]types.Version, error) { return h[filter], nil }

func (h history) Actions(string) ([]store.Action, error) { return nil, nil }

// record is a history with actions, per filter.
type record struct {
	history
	actions map[string][]store.Action
}

func (r record) Actions(filter string) ([]store.Action, error) { return r.actions[filter], nil }

func TestHandler(t *testing.T) {
	const token = "s3cret"
	l := newLoop()
	srv := httptest.NewServer(NewHandler(Config{
		Controller: l, Fleet: fleet.New(fleet.Config{}), History: history{},
		Gatherer: prometheus.NewRegistry(), Token: token, Log: zaptest.NewLogger(t),
	}))
	defer srv.Close()
	tests := []struct {
		name, method, path, auth, body string
		want                           int
		wantIn                         string
	}{
		{name: "health needs no token", method: "GET", path: "/healthz", want: 200},
		{name: "metrics without token", method: "GET", path: "/metrics", want: 401, wantIn: "bearer token"},
		{name: "metrics with a wrong token", method: "GET", path: "/metrics", auth: "Bearer nope", want: 401},
		{name: "metrics", method: "GET", path: "/metrics", auth: "Bearer " + token, want: 200},
		{name: "status without token", method: "GET", path: "/api/v1/status", want: 401, wantIn: "bearer token"},
		{name: "status with a wrong token", method: "GET", path: "/api/v1/status", auth: "Bearer nope", want: 401},
		{name: "status", method: "GET", path: "/api/v1/status", auth: "Bearer " + token, want: 200, wantIn: `"auth"`},
		{name: "command without token changes nothing", method: "POST", path: "/api/v1/rollout/auth/pause", want: 401},
		{name: "command", method: "POST", path: "/api/v1/rollout/auth/pause", auth: "Bearer " + token, want: 200},
		{name: "unknown filter", method: "POST", path: "/api/v1/rollout/nope/pause", auth: "Bearer " + token, want: 404, wantIn: "unknown filter"},
		{name: "unknown field in the body", method: "POST", path: "/api/v1/rollout/auth/rollback", auth: "Bearer " + token, body: `{"reasn":"x"}`, want: 400},
		{name: "plan with a broken config", method: "POST", path: "/api/v1/rollout/plan", auth: "Bearer " + token, body: "mode: both\n", want: 400, wantIn: "mode"},
		{name: "history of a filter with none", method: "GET", path: "/api/v1/filters/auth/history", auth: "Bearer " + token, want: 200, wantIn: `"versions": []`},
		{name: "history of an unknown filter", method: "GET", path: "/api/v1/filters/nope/history", auth: "Bearer " + token, want: 404, wantIn: "filter nope: unknown filter"},
		{name: "version", method: "GET", path: "/api/v1/version", auth: "Bearer " + token, want: 200, wantIn: `"go_version"`},
		{name: "version without token", method: "GET", path: "/api/v1/version", want: 401},
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

// TestMetricsOpen: admin_metrics_open serves /metrics without the token
// while /api/ still needs it; with no token at all, metrics are open.
func TestMetricsOpen(t *testing.T) {
	tests := []struct {
		name        string
		token       string
		metricsOpen bool
		path        string
		want        int
	}{
		{name: "token set, metrics open", token: "s3cret", metricsOpen: true, path: "/metrics", want: 200},
		{name: "token set, metrics open, api still closed", token: "s3cret", metricsOpen: true, path: "/api/v1/status", want: 401},
		{name: "token set, metrics closed by default", token: "s3cret", path: "/metrics", want: 401},
		{name: "no token", path: "/metrics", want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(NewHandler(Config{
				Controller: newLoop(), Fleet: fleet.New(fleet.Config{}), History: history{},
				Gatherer: prometheus.NewRegistry(), Token: tt.token, MetricsOpen: tt.metricsOpen, Log: zaptest.NewLogger(t),
			}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
		})
	}
}

// TestBodyLimits: a body over its limit is answered 413, whether its length
// is announced or it comes chunked; it is never planned in part. The plan
// below is valid YAML up to MaxPlanBytes (a comment) and invalid after it.
func TestBodyLimits(t *testing.T) {
	const token = "s3cret"
	srv := httptest.NewServer(NewHandler(Config{
		Controller: newLoop(), Fleet: fleet.New(fleet.Config{}), History: history{},
		Gatherer: prometheus.NewRegistry(), Token: token, Log: zaptest.NewLogger(t),
	}))
	defer srv.Close()
	bigPlan := "# " + strings.Repeat("x", MaxPlanBytes) + "\nmode: both\n"
	bigCommand := `{"reason":"` + strings.Repeat("x", MaxCommandBytes) + `"}`
	tests := []struct {
		name, path, body string
		chunked          bool
		want             int
	}{
		{name: "plan over the limit", path: "/api/v1/rollout/plan", body: bigPlan, want: 413},
		{name: "plan over the limit, chunked", path: "/api/v1/rollout/plan", body: bigPlan, chunked: true, want: 413},
		{name: "command over the limit", path: "/api/v1/rollout/auth/rollback", body: bigCommand, want: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest("POST", srv.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("POST %s = %d %q, want %d", tt.path, resp.StatusCode, got, tt.want)
			}
		})
	}
}

// TestServerTimeouts runs NewServer on a loopback port against a client
// that holds the token but sends its body slowly, or not at all, and one
// that keeps an idle connection: the server must end both. The limits are
// short here; the wait for the server to act is not.
func TestServerTimeouts(t *testing.T) {
	const token = "s3cret"
	srv := NewServer(Config{
		Controller: newLoop(), Fleet: fleet.New(fleet.Config{}), History: history{},
		Gatherer: prometheus.NewRegistry(), Token: token, Log: zaptest.NewLogger(t),
		ReadTimeout: time.Second, IdleTimeout: time.Second,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	// serverWait bounds how long the server may take to act on a 1 s limit
	// (generous: -race, 2 shared cores).
	const serverWait = 20 * time.Second
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetReadDeadline(time.Now().Add(serverWait))
		return conn, bufio.NewReader(conn)
	}

	t.Run("body sent too slowly", func(t *testing.T) {
		conn, r := dial(t)
		// Headers at once, then a few bytes of the 100 announced, then nothing.
		fmt.Fprintf(conn, "POST /api/v1/rollout/plan HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\nmode:", token)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body within %v: %v", serverWait, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled body answered %s, want 408", resp.Status)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("connection still open after the 408 (read: %v)", err)
		}
	})

	t.Run("idle connection", func(t *testing.T) {
		conn, r := dial(t)
		fmt.Fprintf(conn, "GET /api/v1/status HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\n\r\n", token)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("status = %s (close %v), want 200 on a kept-alive connection", resp.Status, resp.Close)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection not closed within %v (read: %v)", serverWait, err)
		}
	})
}

// TestCommandActor: the loop is told who asked, from the body, else the
// header, else as the holder of the admin token.
func TestCommandActor(t *testing.T) {
	tests := []struct {
		name, body, header, want string
	}{
		{name: "in the body", body: `{"actor":"alice@ops-1"}`, want: "alice@ops-1"},
		{name: "in the header", header: "bob@laptop", want: "bob@laptop"},
		{name: "the body wins", body: `{"actor":"alice@ops-1"}`, header: "bob@laptop", want: "alice@ops-1"},
		{name: "neither", want: api.DefaultActor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoop()
			srv := httptest.NewServer(NewHandler(Config{Controller: l, Fleet: fleet.New(fleet.Config{}), History: history{},
				Gatherer: prometheus.NewRegistry(), Log: zaptest.NewLogger(t)}))
			defer srv.Close()
			req, err := http.NewRequest("POST", srv.URL+api.Prefix+"/rollout/auth/pause", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set(api.ActorHeader, tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(l.commands) != 1 || l.commands[0].Actor != tt.want {
				t.Fatalf("%s; commands %+v, want one with actor %q", resp.Status, l.commands, tt.want)
			}
		})
	}
}
