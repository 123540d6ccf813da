package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"go.uber.org/zap/zaptest"
	"sigs.k8s.io/yaml"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// These tests run the CLI in-process (run, as main does) against the real
// admin API on a loopback port. Behind the API, script stands in for the
// reconcile loop, which needs the whole pipeline and is tested through this
// same API in e2e/scenarios.

var (
	v1 = types.DigestOf([]byte("auth v1"))
	v2 = types.DigestOf([]byte("auth v2"))
	v3 = types.DigestOf([]byte("auth v3"))
)

// script answers Status with states[0], states[1], ... one per call (the
// last one repeats), so a test can lay out how a rollout goes poll by poll.
type script struct {
	mu       sync.Mutex
	states   [][]controller.FilterStatus
	calls    int
	commands []controller.Command
}

func (s *script) Status() []controller.FilterStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[min(s.calls, len(s.states)-1)]
	s.calls++
	return st
}

func (s *script) Do(_ context.Context, cmd controller.Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[min(s.calls, len(s.states)-1)]
	i := slices.IndexFunc(st, func(f controller.FilterStatus) bool { return f.Name == cmd.Filter })
	switch {
	case i < 0:
		return fmt.Errorf("rollout: %q: %w", cmd.Filter, controller.ErrUnknownFilter)
	case cmd.Action == controller.Pause && st[i].Candidate == "":
		return fmt.Errorf("rollout pause %s: rollout: %s: pause: %w", cmd.Filter, cmd.Filter, rollout.ErrNoCandidate)
	}
	s.commands = append(s.commands, cmd)
	return nil
}

func (s *script) DryRun(context.Context, config.Config) ([]rollout.Change, error) {
	return []rollout.Change{{Node: "n1", Filter: "auth", From: types.FilterVersions{Stable: v1}, To: types.FilterVersions{Stable: v2}}}, nil
}

type history map[string][]types.Version

func (h history) History(filter string) ([]types.Version, error) { return h[filter], nil }

func (h history) Actions(string) ([]store.Action, error) { return nil, nil }

// stable is auth with v1 stable and nothing rolling out.
var stable = []controller.FilterStatus{{Name: "auth", Stable: v1, By: config.ByNode, Percent: 100}}

// rollingOut is auth with v2 at step 1 of 3.
var rollingOut = []controller.FilterStatus{{Name: "auth", Stable: v1, Candidate: v2, By: config.ByNode, Percent: 10, Steps: []int{10, 50, 100}}}

// serveAdmin runs the admin API over s on a loopback port and returns its
// host:port.
func serveAdmin(t *testing.T, s *script, token string) string {
	t.Helper()
	srv := httptest.NewServer(admin.NewHandler(admin.Config{
		Controller: s, Fleet: fleet.New(fleet.Config{}), Gatherer: prometheus.NewRegistry(), Token: token, Log: zaptest.NewLogger(t),
		History: history{"auth": {
			{Filter: "auth", Digest: v1, Size: 100, AddedAt: time.Unix(0, 0)},
			{Filter: "auth", Digest: v2, Size: 200, AddedAt: time.Unix(60, 0)},
		}},
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// wasmfleet runs one command line and returns its exit code and output.
func wasmfleet(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestExitCodes(t *testing.T) {
	addr := serveAdmin(t, &script{states: [][]controller.FilterStatus{stable}}, "s3cret")
	t.Setenv("WASMFLEET_ADMIN_TOKEN", "s3cret")
	down := closedAddr(t)
	tests := []struct {
		name       string
		args       []string
		want       int
		wantStderr string
	}{
		{name: "status", args: []string{"status", "--admin", addr}, want: exitOK},
		{name: "unknown command", args: []string{"stauts"}, want: exitUsage, wantStderr: "wasmfleet: unknown command \"stauts\" for \"wasmfleet\"\n\nDid you mean this?\n\tstatus\n\nRun 'wasmfleet --help' for usage.\n"},
		{name: "unknown subcommand", args: []string{"rollout", "pasue", "auth"}, want: exitUsage,
			wantStderr: "wasmfleet: unknown command \"pasue\" for \"wasmfleet rollout\"; did you mean pause?\nRun 'wasmfleet rollout --help' for usage.\n"},
		{name: "unknown flag", args: []string{"status", "--admn", addr}, want: exitUsage, wantStderr: "Run 'wasmfleet status --help' for usage."},
		{name: "missing argument", args: []string{"rollout", "pause", "--admin", addr}, want: exitUsage},
		{name: "output format", args: []string{"status", "--admin", addr, "-o", "yml"}, want: exitUsage, wantStderr: "want table, json or yaml"},
		{name: "--wait flags without --wait", args: []string{"rollout", "status", "auth", "--admin", addr, "--timeout", "1s"}, want: exitUsage},
		{name: "an --admin that is no address", args: []string{"status", "--admin", "ftp://x"}, want: exitUsage, wantStderr: "want host:port or an http(s) URL"},
		{name: "unreachable", args: []string{"status", "--admin", down}, want: exitUnreachable,
			wantStderr: "wasmfleet: admin API at http://" + down + ": dial tcp " + down + ": connect: connection refused (is `wasmfleet serve` running there? set --admin or $WASMFLEET_ADMIN)\n"},
		{name: "wrong token", args: []string{"status", "--admin", addr, "--token", "nope"}, want: exitRefused,
			wantStderr: "wasmfleet: admin: missing or wrong bearer token (set --token or $WASMFLEET_ADMIN_TOKEN)\n"},
		{name: "unknown filter", args: []string{"rollout", "pause", "nope", "--admin", addr}, want: exitRefused, wantStderr: "wasmfleet: pause nope: unknown filter\n"},
		{name: "refused command, said once", args: []string{"rollout", "pause", "auth", "--admin", addr}, want: exitRefused,
			wantStderr: "wasmfleet: pause auth: no candidate is rolling out\n"},
		{name: "a file that is not there", args: []string{"rollout", "plan", "--admin", addr, "-c", "/nonexistent.yaml"}, want: exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := wasmfleet(t, tt.args...)
			if code != tt.want || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("wasmfleet %s: exit %d, stderr %q; want exit %d, stderr containing %q", strings.Join(tt.args, " "), code, stderr, tt.want, tt.wantStderr)
			}
		})
	}
}

// TestAdminAddress: every client command takes --admin as host:port or as
// a URL, and $WASMFLEET_ADMIN when --admin is not given.
func TestAdminAddress(t *testing.T) {
	addr := serveAdmin(t, &script{states: [][]controller.FilterStatus{rollingOut}}, "")
	tests := []struct {
		name, env string
		args      []string
	}{
		{name: "host:port", args: []string{"--admin", addr}},
		{name: "URL", args: []string{"--admin", "http://" + addr}},
		{name: "URL with a slash", args: []string{"--admin", "http://" + addr + "/"}},
		{name: "environment", env: addr},
		{name: "environment as a URL", env: "http://" + addr},
		{name: "--admin over the environment", env: closedAddr(t), args: []string{"--admin", addr}},
	}
	commands := [][]string{{"status"}, {"version"}, {"rollout", "status", "auth"}, {"rollout", "plan", "-c", "testdata/wasmfleet.yaml"}, {"rollout", "pause", "auth"}}
	for _, tt := range tests {
		for _, c := range commands {
			t.Run(tt.name+"/"+strings.Join(c, " "), func(t *testing.T) {
				t.Setenv("WASMFLEET_ADMIN", tt.env)
				code, _, stderr := wasmfleet(t, append(c, tt.args...)...)
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, stderr)
				}
			})
		}
	}
}

// TestOutputFormats: -o json and -o yaml print the api types, which decode
// back; the table is the default.
func TestOutputFormats(t *testing.T) {
	addr := serveAdmin(t, &script{states: [][]controller.FilterStatus{rollingOut}}, "")
	tests := []struct {
		args      []string
		into      func() any
		check     func(t *testing.T, v any)
		wantTable string
	}{
		{args: []string{"status"}, into: func() any { return &api.Status{} }, wantTable: "10% by node, step 1/3",
			check: func(t *testing.T, v any) {
				if f := v.(*api.Status).Filters; len(f) != 1 || f[0].Candidate != v2 || f[0].Step != 1 {
					t.Errorf("filters = %+v", f)
				}
			}},
		{args: []string{"rollout", "status", "auth"}, into: func() any { return &filterReport{} }, wantTable: "10% by node, step 1/3; candidate acked by 0 of 0 nodes",
			check: func(t *testing.T, v any) {
				if r := v.(*filterReport); r.Filter.Candidate != v2 || len(r.Versions) != 2 {
					t.Errorf("report = %+v", r)
				}
			}},
		{args: []string{"rollout", "plan", "-c", "testdata/wasmfleet.yaml"}, into: func() any { return &api.Plan{} }, wantTable: "candidate " + v2.Short(),
			check: func(t *testing.T, v any) {
				if c := v.(*api.Plan).Changes; len(c) != 1 || c[0].To.Candidate != v2 || c[0].To.Stable != "" {
					t.Errorf("changes = %+v, want n1 to the candidate, as the candidate", c)
				}
			}},
		{args: []string{"rollout", "resume", "auth"}, into: func() any { return &api.Filter{} }, wantTable: "resume auth: stable " + v1.Short(),
			check: func(t *testing.T, v any) {
				if f := v.(*api.Filter); f.Name != "auth" {
					t.Errorf("filter = %+v", f)
				}
			}},
		{args: []string{"version"}, into: func() any { return &versions{} }, wantTable: "server",
			check: func(t *testing.T, v any) {
				if vs := v.(*versions); vs.Server == nil || *vs.Server != vs.Client || vs.Client.GoVersion == "" {
					t.Errorf("versions = %+v, want the server's too (the same build here)", vs)
				}
			}},
	}
	for _, tt := range tests {
		for _, format := range []string{"table", "json", "yaml"} {
			t.Run(strings.Join(tt.args, " ")+"/"+format, func(t *testing.T) {
				args := append(slices.Clone(tt.args), "--admin", addr)
				if format != "table" {
					args = append(args, "-o", format)
				}
				code, stdout, stderr := wasmfleet(t, args...)
				if code != exitOK {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				v := tt.into()
				var err error
				switch format {
				case "table":
					if !strings.Contains(stdout, tt.wantTable) {
						t.Fatalf("table lacks %q:\n%s", tt.wantTable, stdout)
					}
					return
				case "json":
					err = json.Unmarshal([]byte(stdout), v)
				case "yaml":
					err = yaml.UnmarshalStrict([]byte(stdout), v)
				}
				if err != nil {
					t.Fatalf("%v in\n%s", err, stdout)
				}
				tt.check(t, v)
			})
		}
	}
}

// TestRolloutWait: `rollout status --wait` returns when the rollout ends,
// and its exit code says how.
func TestRolloutWait(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	step2 := []controller.FilterStatus{{Name: "auth", Stable: v1, Candidate: v2, By: config.ByNode, Percent: 50, Steps: []int{10, 50, 100}, Step: 1}}
	promoted := []controller.FilterStatus{{Name: "auth", Stable: v2, By: config.ByNode, Percent: 100}}
	rolledBack := []controller.FilterStatus{{Name: "auth", Stable: v1, By: config.ByNode, Percent: 100,
		Bad: []types.BadMark{{Digest: v2, Node: "n3", Reason: "proxy_on_configure failed", At: at}}}}
	replaced := []controller.FilterStatus{{Name: "auth", Stable: v1, Candidate: v3, By: config.ByNode, Percent: 10, Steps: []int{10, 50, 100}}}
	tests := []struct {
		name       string
		states     [][]controller.FilterStatus
		args       []string
		want       int
		wantStderr []string
	}{
		{name: "promoted", states: [][]controller.FilterStatus{rollingOut, rollingOut, step2, promoted}, want: exitOK,
			wantStderr: []string{"auth " + v2.Short() + ": 10% by node, step 1/3", "auth " + v2.Short() + ": 50% by node, step 2/3"}},
		{name: "rolled back", states: [][]controller.FilterStatus{rollingOut, rolledBack}, want: exitRolloutFailed,
			wantStderr: []string{"wasmfleet: auth " + v2.Short() + " rolled back at " + at.Local().Format(time.DateTime) + ": proxy_on_configure failed\n"}},
		{name: "replaced by a newer version", states: [][]controller.FilterStatus{rollingOut, replaced}, want: exitRolloutFailed,
			wantStderr: []string{"replaced by a newer candidate, " + v3.Short()}},
		{name: "nothing rolling out", states: [][]controller.FilterStatus{stable}, want: exitOK, wantStderr: []string{"nothing rolling out"}},
		{name: "a version not admitted yet, by prefix", states: [][]controller.FilterStatus{stable, stable, rollingOut, promoted},
			args: []string{"--digest", string(v2[:8])}, want: exitOK, wantStderr: []string{"waiting for it to be admitted"}},
		{name: "a version promoted before the wait", states: [][]controller.FilterStatus{promoted}, args: []string{"--digest", "sha256:" + v2.Short()}, want: exitOK},
		{name: "a version rolled back before the wait", states: [][]controller.FilterStatus{rolledBack}, args: []string{"--digest", v2.Short()}, want: exitRolloutFailed},
		{name: "timeout", states: [][]controller.FilterStatus{rollingOut}, args: []string{"--timeout", "300ms"}, want: exitTimeout,
			wantStderr: []string{"wasmfleet: rollout of auth: not over after --timeout 300ms: 10% by node, step 1/3\n"}},
		{name: "a digest that is no digest", states: [][]controller.FilterStatus{rollingOut}, args: []string{"--digest", "v2"}, want: exitUsage},
		{name: "unknown filter", states: [][]controller.FilterStatus{nil}, want: exitRefused, wantStderr: []string{"filter auth: unknown filter"}},
		{name: "the first version of a filter", states: [][]controller.FilterStatus{nil, nil, promoted}, args: []string{"--digest", v2.Short()}, want: exitOK,
			wantStderr: []string{"auth " + v2.Short() + ": waiting for it to be admitted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveAdmin(t, &script{states: tt.states}, "")
			args := append([]string{"rollout", "status", "auth", "--wait", "--interval", "10ms", "--admin", addr}, tt.args...)
			code, _, stderr := wasmfleet(t, args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestClearBadPrefix: the 12 characters a table shows are enough for
// clear-bad; the control plane gets the whole digest.
func TestClearBadPrefix(t *testing.T) {
	s := &script{states: [][]controller.FilterStatus{{{Name: "auth", Stable: v1, By: config.ByNode, Percent: 100,
		Bad: []types.BadMark{{Digest: v2, Reason: "rolled back by an operator"}}}}}}
	addr := serveAdmin(t, s, "")
	code, stdout, stderr := wasmfleet(t, "rollout", "clear-bad", "auth", v2.Short(), "--admin", addr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(s.commands) != 1 || s.commands[0].Digest != v2 || s.commands[0].Action != controller.ClearBad {
		t.Fatalf("commands = %+v, want clear-bad of %s", s.commands, v2)
	}
	if !strings.Contains(stdout, "clear-bad auth") {
		t.Errorf("stdout = %q", stdout)
	}
	if code, _, stderr := wasmfleet(t, "rollout", "clear-bad", "auth", "ffff", "--admin", addr); code != exitRefused || !strings.Contains(stderr, "no such version") {
		t.Errorf("an unknown prefix: exit %d, %q", code, stderr)
	}
}

// TestHelp: every command has examples, and the client commands document
// the exit codes.
func TestHelp(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		if c.Runnable() && c.Example == "" {
			t.Errorf("%s has no examples in --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	check(newRoot())
	code, stdout, _ := wasmfleet(t, "--help")
	if code != exitOK || !strings.Contains(stdout, "Exit codes:") || !strings.Contains(stdout, "WASMFLEET_ADMIN") {
		t.Errorf("wasmfleet --help (exit %d) lacks the exit codes or WASMFLEET_ADMIN:\n%s", code, stdout)
	}
}
