package controller

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// stepped is a config whose filter hello rolls out in steps an hour apart,
// so a candidate stays the candidate for the length of a test.
func stepped() config.Config {
	cfg := config.Default()
	cfg.Filters = []config.Filter{{Name: "hello", Rollout: config.Rollout{Steps: []int{10, 50, 100}, Interval: config.Duration(time.Hour)}}}
	return cfg
}

// TestOperatorActionsRecorded: every applied command, and a reload that
// changes the filter's entry, lands in the filter's history with who asked
// and why; a refused command does not, and its error is the planner's,
// said once.
func TestOperatorActionsRecorded(t *testing.T) {
	cfg := stepped()
	h := newHarness(t, cfg, fleet.Config{})
	v1 := h.drop("hello", wasmtest.Module(t, "internal/wasmtest/testdata/hello"))
	h.wait("v1 the candidate", func() bool { return h.status("hello").Candidate == v1 })
	ctx := context.Background()
	for _, cmd := range []Command{
		{Action: Pause, Actor: "alice@ops-1", Reason: "watching p99"},
		{Action: Resume, Actor: "alice@ops-1"},
		{Action: Rollback, Actor: "bob@laptop"},
		{Action: ClearBad, Actor: "bob@laptop", Reason: "false alarm", Digest: v1},
	} {
		cmd.Filter = "hello"
		if err := h.ctrl.Do(ctx, cmd); err != nil {
			t.Fatalf("%s: %v", cmd.Action, err)
		}
	}
	h.wait("v1, cleared, the candidate again", func() bool { return h.status("hello").Candidate == v1 })
	err := h.ctrl.Do(ctx, Command{Action: Resume, Filter: "hello", Actor: "carol@ops-2"})
	if want := "rollout: hello: resume: " + rollout.ErrNotPaused.Error(); err == nil || err.Error() != want || !errors.Is(err, rollout.ErrNotPaused) {
		t.Errorf("a refused resume: %v, want %q", err, want)
	}
	next := cfg
	next.Filters = []config.Filter{{Name: "hello", Required: true, Rollout: config.Rollout{Steps: []int{10, 50, 100}, Interval: config.Duration(2 * time.Hour)}}}
	if err := h.ctrl.Reconfigure(ctx, next); err != nil {
		t.Fatal(err)
	}

	got, err := h.store.Actions("hello")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].At.IsZero() {
			t.Errorf("action %d has no time", i)
		}
		got[i].At = time.Time{}
	}
	want := []store.Action{
		{Filter: "hello", Action: "pause", Actor: "alice@ops-1", Reason: "watching p99", Digest: v1},
		{Filter: "hello", Action: "resume", Actor: "alice@ops-1", Digest: v1},
		{Filter: "hello", Action: "rollback", Actor: "bob@laptop", Reason: "rolled back by an operator", Digest: v1},
		{Filter: "hello", Action: "clear-bad", Actor: "bob@laptop", Reason: "false alarm", Digest: v1},
		{Filter: "hello", Action: "reload", Actor: ReloadActor, Reason: "the config file changed its required, rollout"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("actions =\n%+v\nwant\n%+v", got, want)
	}
}

// TestClearBadOffersTheVersionAgain: a version cleared of its bad mark that
// its source still holds goes through admission again at once (the source
// reports it only when it changes): the command's answer shows it in
// admission; one its source has moved on from does not.
func TestClearBadOffersTheVersionAgain(t *testing.T) {
	h := newHarness(t, config.Default(), fleet.Config{})
	h.connect("n1")
	hello := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	v1 := h.drop("hello", hello)
	h.respond("n1", "hello", v1, "")
	h.wait("v1 promoted", func() bool { st := h.status("hello"); return st.Stable == v1 && st.Candidate == "" })
	v2 := h.drop("hello", variant(hello, 2))
	h.respond("n1", "hello", v2, "wasm: proxy_on_vm_start failed")
	h.wait("v2 rolled back", func() bool { return len(h.status("hello").Bad) == 1 })

	ctx := context.Background()
	clear := func(d types.Digest) {
		t.Helper()
		if err := h.ctrl.Do(ctx, Command{Action: ClearBad, Filter: "hello", Digest: d}); err != nil {
			t.Fatal(err)
		}
	}
	clear(v2)
	if st := h.status("hello"); len(st.Bad) != 0 || (st.Candidate != v2 && (st.Admitting == nil || st.Admitting.Digest != v2)) {
		t.Fatalf("after clear-bad of v2, still in its source: %+v, want v2 in admission again", st)
	}
	h.wait("v2 the candidate again", func() bool { return h.status("hello").Candidate == v2 })
	h.wait("v2 sent to n1 again", func() bool { return h.planned("n1", v2) })

	// v2 fails again; the source moves on to v3, which an operator rolls
	// back: clearing v2 now offers nothing, clearing v3 offers v3.
	h.respond("n1", "hello", v2, "wasm: proxy_on_vm_start failed")
	h.wait("v2 rolled back again", func() bool { return len(h.status("hello").Bad) == 1 })
	v3 := h.drop("hello", variant(hello, 3))
	h.wait("v3 the candidate", func() bool { return h.status("hello").Candidate == v3 })
	if err := h.ctrl.Do(ctx, Command{Action: Rollback, Filter: "hello"}); err != nil {
		t.Fatal(err)
	}
	clear(v2)
	if st := h.status("hello"); st.Candidate != "" || st.Stable != v1 || st.Admitting != nil {
		t.Fatalf("after clear-bad of v2, no longer in its source: %+v, want v1 alone", st)
	}
	clear(v3)
	h.wait("v3, cleared, the candidate", func() bool { return h.status("hello").Candidate == v3 })
}

// TestNextStepAt: the status says when a stepped rollout moves next, and
// nothing while it is paused.
func TestNextStepAt(t *testing.T) {
	h := newHarness(t, stepped(), fleet.Config{})
	v1 := h.drop("hello", wasmtest.Module(t, "internal/wasmtest/testdata/hello"))
	h.wait("v1 the candidate", func() bool { return h.status("hello").Candidate == v1 })
	if st := h.status("hello"); st.StepSince.IsZero() || !st.NextStepAt.Equal(st.StepSince.Add(time.Hour)) {
		t.Fatalf("step since %v, next step at %v; want an hour later", st.StepSince, st.NextStepAt)
	}
	if err := h.ctrl.Do(context.Background(), Command{Action: Pause, Filter: "hello"}); err != nil {
		t.Fatal(err)
	}
	if st := h.status("hello"); !st.NextStepAt.IsZero() {
		t.Fatalf("paused, next step at %v; want none", st.NextStepAt)
	}
}
