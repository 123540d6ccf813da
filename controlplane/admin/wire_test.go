package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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

var update = flag.Bool("update", false, "rewrite testdata/*.json from what the API answers")

var (
	stable    = types.DigestOf([]byte("auth v1"))
	candidate = types.DigestOf([]byte("auth v2"))
	bad       = types.DigestOf([]byte("auth v0"))
	t0        = time.Date(2026, 12, 5, 9, 0, 0, 0, time.FixedZone("CET", 3600))
)

// reloads is the config watcher's record: r, if ok.
type reloads struct {
	r  RefusedReload
	ok bool
}

func (rl reloads) Refused() (RefusedReload, bool) { return rl.r, rl.ok }

// rollingOut is a control plane in the middle of a rollout of auth by node
// (step 2 of 3, one version rolled back before, a third version on trial
// with a new settings file) with logging retired, and
// three nodes: one on stable, one on the candidate, one that NACKed it. Its
// config file's last change was refused; operators reloaded, paused and
// resumed it.
func rollingOut(t *testing.T) Config {
	t.Helper()
	l := &loop{
		filters: []controller.FilterStatus{
			{Name: "auth", Position: 0, Stable: stable, Candidate: candidate, By: config.ByNode, Percent: 50,
				Steps: []int{10, 50, 100}, Step: 1, StepSince: t0, NextStepAt: t0.Add(30 * time.Minute), Source: "file:///etc/wasmfleet/filters.d",
				LastError: "node n3 NACKed " + candidate.Short() + ": proxy_on_configure failed", ErrorAt: t0.Add(time.Minute),
				Bad:       []types.BadMark{{Digest: bad, Node: "n3", Reason: "proxy_on_configure failed", At: t0.Add(-time.Hour)}},
				Admitting: &controller.Admitting{Digest: types.DigestOf([]byte("auth v3")), Settings: "filters.d/auth.yaml", Since: t0.Add(3 * time.Minute)}},
			{Name: "logging", Position: -1, Stable: types.DigestOf([]byte("logging v1")), By: config.ByNode, Percent: 100, Retired: true},
		},
		changes: []rollout.Change{
			{Node: "n1", Filter: "auth", From: types.FilterVersions{Stable: stable}, To: types.FilterVersions{Stable: candidate}},
			{Node: "n4", Filter: "auth", To: types.FilterVersions{Stable: stable, Candidate: candidate, CandidateShare: 1250}},
		},
	}
	now := t0
	f := fleet.New(fleet.Config{Now: func() time.Time { return now }})
	const ecds = resource.ExtensionConfigType
	for i, n := range []struct {
		id     string
		runs   types.FilterVersions
		reason string
	}{
		{id: "n1", runs: types.FilterVersions{Stable: stable}},
		{id: "n2", runs: types.FilterVersions{Stable: candidate}},
		{id: "n3", runs: types.FilterVersions{Stable: candidate}, reason: "proxy_on_configure failed"},
	} {
		s := fleet.Stream{ID: int64(i + 1)}
		id := fleet.Identity{ID: n.id, Cluster: "edge", UserAgent: "envoy/1.33.2"}
		f.StreamOpened(s)
		f.Requested(s, id, fleet.Request{TypeURL: ecds})
		f.Assigned(n.id, "v1", types.Assignment{"auth": n.runs})
		f.Sent(s, ecds, "v1", "1")
		now = now.Add(1500 * time.Millisecond)
		f.Requested(s, id, fleet.Request{TypeURL: ecds, Version: "v1", Nonce: "1", NACK: n.reason != "", Reason: n.reason})
	}
	return Config{
		Controller: l, Fleet: f, Gatherer: prometheus.NewRegistry(), Log: zaptest.NewLogger(t),
		Reloads: reloads{r: RefusedReload{Path: "/etc/wasmfleet/wasmfleet.yaml", At: t0.Add(2 * time.Minute),
			Err: errors.Join(errors.New(`wasmfleet.yaml:3: filters[0].rollout.intervall: unknown field`), errors.New(`wasmfleet.yaml:5: filters[0].rollout.percent: 120 is over 100`))}, ok: true},
		History: record{
			history: history{"auth": {
				{Filter: "auth", Digest: stable, Size: 2_100_000, Origin: types.Origin{Kind: types.OriginFile, Ref: "filters.d/auth.wasm"}, AddedAt: t0.Add(-2 * time.Hour),
					Manifest: &types.Manifest{Name: "auth", Version: "1.0.0", Capabilities: []string{"http_call"}}},
				{Filter: "auth", Digest: candidate, Size: 2_200_000, Origin: types.Origin{Kind: types.OriginOCI, Ref: "oci://reg/auth@sha256:" + string(candidate)}, AddedAt: t0},
			}},
			actions: map[string][]store.Action{"auth": {
				{Filter: "auth", Action: "reload", Actor: "config file", Reason: "the config file changed its rollout", At: t0.Add(-time.Hour)},
				{Filter: "auth", Action: "pause", Actor: "alice@ops-1", Reason: "watching p99", Digest: candidate, At: t0.Add(30 * time.Second)},
				{Filter: "auth", Action: "resume", Actor: "admin-api", Digest: candidate, At: t0.Add(time.Minute)},
			}},
		},
	}
}

// TestWireGolden: what the API answers, byte for byte, in a state with
// every kind of field filled. The golden files are what a client of
// /api/v1 may rely on; run with -update after a deliberate change and read
// the diff. Each answer must also decode into its api type and encode back
// to the same bytes, which is what the CLI does with it.
func TestWireGolden(t *testing.T) {
	srv := httptest.NewServer(NewHandler(rollingOut(t)))
	defer srv.Close()
	tests := []struct {
		name, method, path, body string
		into                     any
	}{
		{name: "status", method: "GET", path: "/api/v1/status", into: &api.Status{}},
		{name: "history", method: "GET", path: "/api/v1/filters/auth/history", into: &api.History{}},
		{name: "plan", method: "POST", path: "/api/v1/rollout/plan", body: "mode: managed\n", into: &api.Plan{}},
		{name: "command", method: "POST", path: "/api/v1/rollout/auth/pause", into: &api.Filter{}},
		{name: "error", method: "POST", path: "/api/v1/rollout/nope/pause", into: &api.Error{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			golden := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s answered\n%s\nwant (%s)\n%s", tt.method, tt.path, got, golden, want)
			}
			if err := json.Unmarshal(got, tt.into); err != nil {
				t.Fatalf("decoding into %T: %v", tt.into, err)
			}
			again, err := json.MarshalIndent(tt.into, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(again, '\n'), got) {
				t.Errorf("%T does not round-trip:\n%s", tt.into, again)
			}
		})
	}
}

// TestWireRoles: a node that runs only the candidate shows it as the
// candidate, in the status and in a plan (internally it is the node's only,
// "stable", version, which `plan -o json` used to print as stable).
func TestWireRoles(t *testing.T) {
	srv := httptest.NewServer(NewHandler(rollingOut(t)))
	defer srv.Close()
	var st api.Status
	getJSON(t, srv.URL+"/api/v1/status", &st)
	want := map[string]api.Running{"n1": {Stable: stable}, "n2": {Candidate: candidate}, "n3": {}}
	for _, n := range st.Nodes {
		if got := n.Filters[0].Acked; got != want[n.ID] {
			t.Errorf("node %s acked %+v, want %+v", n.ID, got, want[n.ID])
		}
	}
	resp, err := http.Post(srv.URL+"/api/v1/rollout/plan", "application/yaml", strings.NewReader("mode: managed\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p api.Plan
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	wantPlan := []api.Change{
		{Node: "n1", Filter: "auth", From: &api.Running{Stable: stable}, To: &api.Running{Candidate: candidate}},
		{Node: "n4", Filter: "auth", To: &api.Running{Stable: stable, Candidate: candidate, CandidatePercent: 12.5}},
	}
	if !reflect.DeepEqual(p.Changes, wantPlan) {
		t.Errorf("plan = %+v, want %+v", p.Changes, wantPlan)
	}
}

// TestRefusedReload: a refused reload is in the status until the file is
// fixed, and absent once it is (or without a config file).
func TestRefusedReload(t *testing.T) {
	for _, tt := range []struct {
		name    string
		reloads Reloads
		want    bool
	}{
		{name: "refused", reloads: reloads{r: RefusedReload{Path: "c.yaml", Err: errors.New("bad")}, ok: true}, want: true},
		{name: "fixed since", reloads: reloads{}},
		{name: "no config file", reloads: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rollingOut(t)
			cfg.Reloads = tt.reloads
			srv := httptest.NewServer(NewHandler(cfg))
			defer srv.Close()
			var st api.Status
			getJSON(t, srv.URL+"/api/v1/status", &st)
			if got := st.RefusedReload != nil; got != tt.want {
				t.Fatalf("refused_reload = %+v, want present %v", st.RefusedReload, tt.want)
			}
		})
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestCommandDigest: clear-bad takes a digest prefix, resolved against the
// filter's versions (history and bad marks) before the loop sees it.
func TestCommandDigest(t *testing.T) {
	// Two versions whose digests share their first 4 hex characters (a few
	// hundred tries find a pair, by the birthday bound).
	var twins []types.Digest
	seen := map[string]types.Digest{}
	for i := 0; twins == nil; i++ {
		d := types.DigestOf(fmt.Appendf(nil, "twin %d", i))
		if other, ok := seen[string(d[:4])]; ok {
			twins = []types.Digest{other, d}
		}
		seen[string(d[:4])] = d
	}
	tests := []struct {
		name, digest string
		want         int
		wantDigest   types.Digest
		wantIn       string
	}{
		{name: "whole digest", digest: string(bad), want: 200, wantDigest: bad},
		{name: "with sha256:", digest: "sha256:" + bad.Short(), want: 200, wantDigest: bad},
		{name: "short prefix of a bad mark", digest: string(bad[:6]), want: 200, wantDigest: bad},
		{name: "prefix of a history version", digest: stable.Short(), want: 200, wantDigest: stable},
		{name: "too short", digest: string(bad[:3]), want: 400, wantIn: "at least 4 hex"},
		{name: "not hex", digest: "xyzw", want: 400, wantIn: "not a digest"},
		{name: "no such version", digest: "0000000000", want: 404, wantIn: "clear-bad auth: 0000000000: no such version"},
		{name: "ambiguous prefix", digest: string(twins[0][:4]), want: 400,
			wantIn: "ambiguous digest prefix: matches " + twins[0].Short() + ", " + twins[1].Short()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rollingOut(t)
			l := cfg.Controller.(*loop)
			l.filters[0].Bad = append(l.filters[0].Bad, types.BadMark{Digest: twins[0]}, types.BadMark{Digest: twins[1]})
			srv := httptest.NewServer(NewHandler(cfg))
			defer srv.Close()
			body, _ := json.Marshal(api.CommandRequest{Digest: tt.digest})
			resp, err := http.Post(srv.URL+"/api/v1/rollout/auth/clear-bad", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(got), tt.wantIn) {
				t.Fatalf("clear-bad %q = %d %s, want %d containing %q", tt.digest, resp.StatusCode, got, tt.want, tt.wantIn)
			}
			if tt.wantDigest != "" && (len(l.commands) != 1 || l.commands[0].Digest != tt.wantDigest) {
				t.Fatalf("the loop got %+v, want clear-bad of %s", l.commands, tt.wantDigest)
			}
			if tt.wantDigest == "" && len(l.commands) != 0 {
				t.Fatalf("a refused digest reached the loop: %+v", l.commands)
			}
		})
	}
}

// TestCommandErrorSaidOnce: however the loop wrapped a refusal, the API's
// message names the action and filter once and then the reason.
func TestCommandErrorSaidOnce(t *testing.T) {
	tests := []struct {
		name   string
		refuse error
		want   int
		msg    string
	}{
		{name: "no candidate", refuse: fmt.Errorf("rollout pause auth: %w", fmt.Errorf("rollout: auth: pause: %w", rollout.ErrNoCandidate)),
			want: 409, msg: "pause auth: no candidate is rolling out"},
		{name: "unknown action", refuse: fmt.Errorf("rollout: %q: %w", "pause", controller.ErrUnknownAction),
			want: 404, msg: "pause auth: unknown action"},
		{name: "anything else is passed on", refuse: errors.New("store: disk full"), want: 409, msg: "store: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoop()
			l.refuse = tt.refuse
			srv := httptest.NewServer(NewHandler(Config{Controller: l, Fleet: fleet.New(fleet.Config{}), History: history{},
				Gatherer: prometheus.NewRegistry(), Log: zaptest.NewLogger(t)}))
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/api/v1/rollout/auth/pause", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want || e.Error != tt.msg {
				t.Errorf("= %d %q, want %d %q", resp.StatusCode, e.Error, tt.want, tt.msg)
			}
		})
	}
}

// TestVersion: the server says which build it is, as `wasmfleet version`
// prints for the client.
func TestVersion(t *testing.T) {
	srv := httptest.NewServer(NewHandler(rollingOut(t)))
	defer srv.Close()
	var b api.BuildInfo
	getJSON(t, srv.URL+"/api/v1/version", &b)
	if b != Build() || b.Version == "" || !strings.HasPrefix(b.GoVersion, "go") || !strings.Contains(b.Platform, "/") {
		t.Errorf("version = %+v, want %+v with every field set", b, Build())
	}
}
