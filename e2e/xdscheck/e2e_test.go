package xdscheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// awaitTimeout bounds each wait for a transition: admission trial-runs
// every module, which takes seconds under -race on two cores.
const awaitTimeout = 90 * time.Second

// stableRoute is the route without a runtime_fraction of the default
// listener's first (only) configured route, as View.Routes names it.
var stableRoute = config.DefaultListenerName + "/" + config.DefaultListenerName + ".0"

// Phases of the end-to-end run, as marks in the recording, with the
// filter orders a route may run during each: the chain before the change
// and the chain after it, and nothing in between.
const (
	phaseDropAuth     = "drop auth"
	phaseDropTwo      = "drop logging and transform"
	phaseSplit        = "request split starts"
	phasePromote      = "promote the candidate"
	phaseReorder      = "reorder through the config file"
	phaseNACK         = "a candidate the node fails to load"
	phaseSplitNACK    = "a split candidate the node fails to load"
	phaseRemoveLast   = "remove logging (last)"
	phaseRemoveFirst  = "remove transform (first)"
	phaseDone         = "done"
	requestSplitShare = 30
)

var phaseOrders = map[string][][]string{
	"":               {{}},
	phaseDropAuth:    {{}, {"auth"}},
	phaseDropTwo:     {{"auth"}, {"auth", "logging"}, {"auth", "transform"}, {"auth", "logging", "transform"}},
	phaseSplit:       {{"auth", "logging", "transform"}},
	phasePromote:     {{"auth", "logging", "transform"}},
	phaseReorder:     {{"auth", "logging", "transform"}, {"transform", "auth", "logging"}},
	phaseNACK:        {{"transform", "auth", "logging"}},
	phaseSplitNACK:   {{"transform", "auth", "logging"}},
	phaseRemoveLast:  {{"transform", "auth", "logging"}, {"transform", "auth"}},
	phaseRemoveFirst: {{"transform", "auth"}, {"auth"}},
	phaseDone:        {{"auth"}},
}

// TestControlPlaneStreamHasNoViolations drives a real control plane with
// make-before-break sequencing through every kind of transition and checks
// the stream one node saw.
func TestControlPlaneStreamHasNoViolations(t *testing.T) {
	t.Parallel()
	events := runTransitions(t, false)
	vs, err := Check(events, Options{PhaseOrders: phaseOrders})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, v := range vs {
		t.Errorf("violation: %v", v)
	}
	if t.Failed() {
		logEvents(t, events)
	}
	t.Logf("%d events checked", len(events))
}

// TestUnsequencedStreamViolates is the same run with sequencing off, where
// each node gets its whole snapshot at once and go-control-plane sends RDS
// before ECDS. It proves the checker fails on a real stream, at the
// transitions that are unsafe without sequencing.
//
// A request split starting and a promotion are unsafe too (the canary
// route can run before the candidate arrives, or after the idle canary
// went back to the no-op), but only in one order of arrival (RDS first for
// the split, ECDS first for the promotion), which depends on which of the
// node's watches is open: they are logged, not required.
func TestUnsequencedStreamViolates(t *testing.T) {
	t.Parallel()
	events := runTransitions(t, true)
	vs, err := Check(events, Options{PhaseOrders: phaseOrders})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, v := range vs {
		t.Logf("violation: %v", v)
	}
	want := []struct {
		phase string
		kinds []Kind
		why   string
	}{
		{phaseDropAuth, []Kind{Noop}, "the route enables auth's slot before the ECDS that fills it"},
		{phaseRemoveFirst, []Kind{Order}, "the route drops transform's slot before auth moves into it: auth is skipped"},
	}
	for _, w := range want {
		if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Phase == w.phase && slices.Contains(w.kinds, v.Kind) }) {
			t.Errorf("phase %q: no %v violation; want one: %s", w.phase, w.kinds, w.why)
		}
	}
	if t.Failed() {
		logEvents(t, events)
	}
}

func logEvents(t *testing.T, events []Event) {
	t.Helper()
	for i, ev := range events {
		t.Logf("event %d: %v", i, ev)
	}
}

// modules are the filters the run drops in. auth2..auth4 are auth with a
// custom section appended: same behaviour, other digests.
type modules struct {
	auth, auth2, auth3, auth4, logging, transform []byte
}

// runTransitions starts a control plane and a recording node, drives them
// through every phase in order, waiting at the end of each until the node
// runs what the phase should leave, and returns the recording.
func runTransitions(t *testing.T, unsequenced bool) []Event {
	mods := modules{
		auth:      wasmtest.Module(t, "filters/auth"),
		logging:   wasmtest.Module(t, "filters/logging"),
		transform: wasmtest.Module(t, "filters/transform"),
	}
	mods.auth2 = withCustomSection(mods.auth, "xdscheck", "v2")
	mods.auth3 = withCustomSection(mods.auth, "xdscheck", "v3")
	mods.auth4 = withCustomSection(mods.auth, "xdscheck", "v4")
	v1, v2, v3, v4 := types.DigestOf(mods.auth), types.DigestOf(mods.auth2), types.DigestOf(mods.auth3), types.DigestOf(mods.auth4)

	// The node fails to load auth3 and auth4, as a node short of memory
	// would; the control plane admitted them.
	r := start(t, unsequenced, FailCode(string(v3), string(v4)))
	auth, logging, transform := r.cfg.Filters[0], r.cfg.Filters[1], r.cfg.Filters[2]

	r.await("the listener serves with no filters", func(v View) bool {
		running, ok := v.Routes[stableRoute]
		return ok && len(running) == 0
	})

	r.mark(phaseDropAuth)
	r.writeModule("auth.wasm", mods.auth)
	r.awaitChain("auth", v1)

	r.mark(phaseDropTwo)
	r.writeModule("logging.wasm", mods.logging)
	r.writeModule("transform.wasm", mods.transform)
	r.awaitChain("auth", v1, "logging", "", "transform", "")

	share := requestSplitShare
	auth.Rollout = config.Rollout{By: config.ByRequest, Percent: &share}
	r.writeConfig(auth, logging, transform)
	r.awaitStatus("auth split by request", func(fs api.Filter) bool { return fs.By == string(config.ByRequest) })
	r.mark(phaseSplit)
	r.writeModule("auth.wasm", mods.auth2)
	r.awaitErr("auth2 on a canary route", func() error {
		v := r.rec.View()
		if err := routeRuns(v, stableRoute, "auth", v1, "logging", "", "transform", ""); err != nil {
			return err
		}
		for name, slots := range v.Routes {
			if name == stableRoute {
				continue
			}
			if len(slots) == 0 || !strings.HasSuffix(slots[0], CanarySuffix) {
				return fmt.Errorf("%s runs %v, want a canary slot first", name, slots)
			}
			return routeRuns(v, name, "auth", v2, "logging", "", "transform", "")
		}
		return fmt.Errorf("no canary route: %v", v.Routes)
	})

	r.mark(phasePromote)
	r.command("auth", "promote")
	r.awaitChain("auth", v2, "logging", "", "transform", "")

	auth.Rollout = config.Rollout{}
	r.mark(phaseReorder)
	r.writeConfig(transform, auth, logging)
	r.awaitChain("transform", "", "auth", v2, "logging", "")

	r.mark(phaseNACK)
	r.writeModule("auth.wasm", mods.auth3)
	r.awaitStatus("auth3 rolled back", rolledBack(v3))
	r.awaitChain("transform", "", "auth", v2, "logging", "")

	auth.Rollout = config.Rollout{By: config.ByRequest, Percent: &share}
	r.writeConfig(transform, auth, logging)
	r.awaitStatus("auth split by request", func(fs api.Filter) bool { return fs.By == string(config.ByRequest) })
	r.mark(phaseSplitNACK)
	r.writeModule("auth.wasm", mods.auth4)
	r.awaitStatus("auth4 rolled back", rolledBack(v4))
	r.awaitChain("transform", "", "auth", v2, "logging", "")

	auth.Rollout = config.Rollout{}
	r.writeConfig(transform, auth, logging)
	r.awaitStatus("auth split by node", func(fs api.Filter) bool { return fs.By == string(config.ByNode) })
	r.mark(phaseRemoveLast)
	r.removeModule("logging.wasm")
	r.awaitChain("transform", "", "auth", v2)

	r.mark(phaseRemoveFirst)
	r.removeModule("transform.wasm")
	r.awaitChain("auth", v2)
	r.mark(phaseDone)

	return r.rec.Events()
}
