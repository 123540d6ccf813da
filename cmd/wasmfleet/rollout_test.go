package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestRolloutActor: every rollout command tells the control plane who asks
// and why: --actor, else $USER@hostname.
func TestRolloutActor(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("USER", "alice")
	tests := []struct {
		args          []string
		action        controller.Action
		actor, reason string
	}{
		{args: []string{"pause", "auth", "--reason", "watching p99"}, action: controller.Pause, actor: "alice@" + host, reason: "watching p99"},
		{args: []string{"promote", "auth", "--actor", "deploy-pipeline#42"}, action: controller.Promote, actor: "deploy-pipeline#42"},
		{args: []string{"clear-bad", "auth", v2.Short(), "--actor", "bob", "--reason", "false alarm"}, action: controller.ClearBad, actor: "bob", reason: "false alarm"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := &script{states: [][]controller.FilterStatus{rollingOut}}
			addr := serveAdmin(t, s, "")
			if code, _, stderr := wasmfleet(t, append([]string{"rollout", "--admin", addr}, tt.args...)...); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if len(s.commands) != 1 || s.commands[0].Action != tt.action || s.commands[0].Actor != tt.actor || s.commands[0].Reason != tt.reason {
				t.Fatalf("commands = %+v, want %s by %q because %q", s.commands, tt.action, tt.actor, tt.reason)
			}
		})
	}
}

// TestRolloutStatusShowsHistory: `rollout status` shows when the next step
// is due and what operators did, newest first, read from a real store
// through the admin API.
func TestRolloutStatusShowsHistory(t *testing.T) {
	st, err := store.Open(t.TempDir(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, b := range []string{"auth v1", "auth v2"} {
		d, err := st.PutModule([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddVersion(types.Version{Filter: "auth", Digest: d, Size: int64(len(b)), AddedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []store.Action{
		{Filter: "auth", Action: "pause", Actor: "alice@ops-1", Reason: "watching p99", Digest: v2, At: at.Add(time.Minute)},
		{Filter: "auth", Action: "resume", Actor: "admin-api", Digest: v2, At: at.Add(2 * time.Minute)},
	} {
		if err := st.AddAction(a); err != nil {
			t.Fatal(err)
		}
	}
	next := at.Add(time.Hour)
	s := &script{states: [][]controller.FilterStatus{{{Name: "auth", Stable: v1, Candidate: v2, By: config.ByNode, Percent: 10,
		Steps: []int{10, 50, 100}, StepSince: at, NextStepAt: next}}}}
	srv := httptest.NewServer(admin.NewHandler(admin.Config{Controller: s, Fleet: fleet.New(fleet.Config{}), History: st,
		Gatherer: prometheus.NewRegistry(), Log: zaptest.NewLogger(t)}))
	t.Cleanup(srv.Close)

	code, stdout, stderr := wasmfleet(t, "rollout", "status", "auth", "--admin", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	resume := strings.Index(stdout, "resume  admin-api    "+v2.Short()+"  -")
	pause := strings.Index(stdout, "pause   alice@ops-1  "+v2.Short()+"  watching p99")
	if !strings.Contains(stdout, "next step  "+next.Local().Format(time.DateTime)+"\n") || resume < 0 || pause < resume {
		t.Errorf("rollout status lacks the next step or the actions, newest first:\n%s", stdout)
	}
	var r filterReport
	code, stdout, _ = wasmfleet(t, "rollout", "status", "auth", "--admin", srv.URL, "-o", "json")
	if err := json.Unmarshal([]byte(stdout), &r); code != exitOK || err != nil || len(r.Actions) != 2 || r.Actions[0].Actor != "alice@ops-1" || !r.Filter.NextStepAt.Equal(next) {
		t.Errorf("-o json: exit %d, %v: %+v", code, err, r)
	}
}
