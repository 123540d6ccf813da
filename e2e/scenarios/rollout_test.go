package scenarios

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// stepInterval is how long each rollout step is held. Long enough that a
// test sees every step and can pause at one, short enough to keep the suite
// quick.
const stepInterval = 1500 * time.Millisecond

// splitRequests is how many requests measure a request split: at 10% the
// share must land within 1.5 points, about 5 standard deviations.
const splitRequests = 10_000

// TestRollout runs the rollout scenarios of issue 5 on one fleet, in order:
// each starts from the state the previous one left. The fleet has one node
// in each of the bucket ranges [0,10%), [10%,50%) and [50%,100%) for the
// auth filter, so every step of a 10/50/100 rollout moves a node, plus a
// node with too little memory for the hungry module.
func TestRollout(t *testing.T) {
	mods := buildModules(t)
	auth := config.Filter{
		Name: "auth", Required: true, Code: config.CodeInline, Config: authConfig(sharedKey, alphaKey),
		Rollout: config.Rollout{Steps: []int{10, 50, 100}, Interval: config.Duration(stepInterval)},
	}
	f := newFleet(t, func(c *config.Config) { c.Filters = []config.Filter{auth} })
	ids := nodesInBuckets(t, "auth", []int{0, 1000, 5000, 10000})
	for _, id := range ids {
		f.addNode(id, nodeOptions{})
	}
	s := &rolloutScenario{f: f, mods: mods, auth: auth}
	runSteps(t, f, []step{
		{"a 10/50/100 rollout advances on its interval and completes", s.steps},
		{"b a config edit changes the percent mid-rollout", s.percentEdit},
		{"c a request split measured from real traffic", s.requestSplit},
		{"d a NACK rolls the candidate back with no failed request", s.nackRollback},
	})
}

type rolloutScenario struct {
	f    *testFleet
	mods modules
	auth config.Filter
}

// nodesInBuckets returns one node id per bucket range [edges[i], edges[i+1])
// of filter, found among deterministic candidates: the planner's hash is
// fixed (its golden test guards it), so these ids are stable too.
func nodesInBuckets(t *testing.T, filter string, edges []int) []string {
	t.Helper()
	ids := make([]string, len(edges)-1)
	for i := 0; slices.Contains(ids, ""); i++ {
		if i > 10_000 {
			t.Fatalf("no node ids cover buckets %v", edges)
		}
		id := fmt.Sprintf("edge-%d", i)
		b := rollout.Bucket(id, filter)
		for r := range ids {
			if ids[r] == "" && edges[r] <= b && b < edges[r+1] {
				ids[r] = id
			}
		}
	}
	return ids
}

// authState reads the auth filter's row from the admin API.
func (s *rolloutScenario) authState() api.Filter {
	fs, _ := filterStatus(s.f.status(), "auth")
	return fs
}

// awaitSplit waits until exactly the nodes whose bucket is under percent
// run the candidate in slot 0 and the others run stable, as seen both in
// their ECDS state and in what their traffic does.
func (s *rolloutScenario) awaitSplit(percent int, stable, candidate types.Digest) {
	s.f.t.Helper()
	s.f.awaitErr(fmt.Sprintf("nodes under %d%% on %s, the rest on %s", percent, s.mods.name(candidate), s.mods.name(stable)), func() error {
		for _, m := range s.f.members() {
			want := stable
			if rollout.Bucket(m.id, "auth") < percent*100 {
				want = candidate
			}
			if !m.runs(snapshot.SlotName(0, false), want) {
				return fmt.Errorf("%s does not run %s", m.id, s.mods.name(want))
			}
			if got := s.version(m); got != want {
				return fmt.Errorf("%s served a request with %s", m.id, s.mods.name(got))
			}
		}
		return nil
	})
}

// classify sends n requests with the shared key across the fleet, from
// several goroutines, and counts which version answered each.
func (s *rolloutScenario) classify(n int) map[types.Digest]int {
	members := s.f.members()
	results := make(chan types.Digest, loadWorkers)
	for w := range loadWorkers {
		go func() {
			for i := w; i < n; i += loadWorkers {
				results <- s.version(members[i%len(members)])
			}
		}()
	}
	counts := map[types.Digest]int{}
	for range n {
		counts[<-results]++
	}
	return counts
}

// version tells which auth version answered a request through m: keygate
// marks requests it passes; auth names the key that matched.
func (s *rolloutScenario) version(m *member) types.Digest {
	a, err := send(m.addr(), "/which", map[string]string{"x-api-key": sharedKey})
	if err != nil || a.status != http.StatusOK {
		return ""
	}
	if a.saw.Headers["x-auth-version"] == "keygate" {
		return types.DigestOf(s.mods.keygate)
	}
	if a.saw.Headers["x-auth-key"] == keyNames[sharedKey] {
		return types.DigestOf(s.mods.auth)
	}
	return ""
}

func (s *rolloutScenario) steps(t *testing.T) {
	f := s.f
	v1, v2 := types.DigestOf(s.mods.auth), types.DigestOf(s.mods.keygate)

	// The first version goes through the steps too; wait for it to be stable.
	f.writeFile("auth.wasm", s.mods.auth)
	f.await("auth v1 stable", func() bool { st := s.authState(); return st.Stable == v1 && st.Candidate == "" })
	s.awaitSplit(0, v1, v2)

	// The second version starts at 10%, then 50%. Each step is held
	// (paused) while the test checks that exactly the nodes under it moved,
	// however slow the machine is, then resumed.
	f.writeFile("auth.wasm", s.mods.keygate)
	for _, percent := range []int{10, 50} {
		f.await(fmt.Sprintf("keygate the candidate at %d%%", percent), func() bool {
			st := s.authState()
			return st.Candidate == v2 && st.Percent == percent
		})
		s.command("pause")
		if st := s.authState(); st.Percent != percent || !st.Paused {
			t.Fatalf("after pause: %+v, want paused at %d%%", st, percent)
		}
		s.awaitSplit(percent, v1, v2)
		s.command("resume")
	}
	f.await("keygate promoted to stable after the 100% step", func() bool {
		st := s.authState()
		return st.Stable == v2 && st.Candidate == ""
	})
	s.awaitSplit(0, v2, v2)
	for _, m := range f.members() {
		if d := m.node.Drains(); d != 0 {
			t.Errorf("%s drained %d times: rollout steps must not drain", m.id, d)
		}
	}
}

// command posts an operator command for auth to the admin API.
func (s *rolloutScenario) command(action string) {
	s.f.t.Helper()
	resp, err := adminClient.Post("http://"+s.f.cp.addrs.Admin+"/api/v1/rollout/auth/"+action, "application/json", nil)
	if err != nil {
		s.f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.f.t.Fatalf("rollout %s auth: %s", action, resp.Status)
	}
}

// setRollout edits the config file's rollout for auth; the running control
// plane picks it up.
func (s *rolloutScenario) setRollout(r config.Rollout) {
	s.f.t.Helper()
	s.auth.Rollout = r
	s.f.cfg.Filters = []config.Filter{s.auth}
	s.f.writeConfig()
}

func (s *rolloutScenario) percentEdit(t *testing.T) {
	f := s.f
	v1, v2 := types.DigestOf(s.mods.auth), types.DigestOf(s.mods.keygate)
	buckets := make([]int, 0, len(f.members()))
	for _, m := range f.members() {
		buckets = append(buckets, rollout.Bucket(m.id, "auth"))
	}
	sort.Ints(buckets)
	// Percents that take in exactly one node, then two.
	one, two := buckets[0]/100+1, buckets[1]/100+1

	s.setRollout(config.Rollout{Percent: &one})
	f.await("the config reload", func() bool { return len(s.authState().Steps) == 0 })
	f.writeFile("auth.wasm", s.mods.auth)
	f.await("auth the candidate at the configured percent", func() bool {
		st := s.authState()
		return st.Candidate == v1 && st.Percent == one
	})
	s.awaitSplit(one, v2, v1)

	s.setRollout(config.Rollout{Percent: &two})
	f.await("the new percent in status", func() bool { return s.authState().Percent == two })
	s.awaitSplit(two, v2, v1)

	// Lowering moves nodes back, and only those.
	s.setRollout(config.Rollout{Percent: &one})
	f.await("the lower percent in status", func() bool { return s.authState().Percent == one })
	s.awaitSplit(one, v2, v1)

	// 100% without steps: every node, then promotion once all ACKed.
	all := 100
	s.setRollout(config.Rollout{Percent: &all})
	f.await("auth promoted at 100%", func() bool { st := s.authState(); return st.Stable == v1 && st.Candidate == "" })
	s.awaitSplit(0, v1, v1)
}

func (s *rolloutScenario) requestSplit(t *testing.T) {
	f := s.f
	v1, v2 := types.DigestOf(s.mods.auth), types.DigestOf(s.mods.keygate)
	ten := 10
	s.setRollout(config.Rollout{By: config.ByRequest, Percent: &ten})
	f.await("the config reload", func() bool { return s.authState().By == string(config.ByRequest) })
	f.writeFile("auth.wasm", s.mods.keygate)
	f.await("keygate the candidate for 10% of requests", func() bool {
		st := s.authState()
		return st.Candidate == v2 && st.Percent == 10
	})
	// Every node carries both versions.
	f.await("both versions on every node", func() bool {
		for _, m := range f.members() {
			ds := m.slotDigests()
			if ds[snapshot.SlotName(0, false)] != v1 || ds[snapshot.SlotName(0, true)] != v2 {
				return false
			}
		}
		return true
	})

	counts := s.classify(splitRequests)
	share := float64(counts[v2]) / splitRequests * 100
	t.Logf("request split at 10%%: %d of %d requests on the candidate (%.2f%%), %d on stable, %d unclassified",
		counts[v2], splitRequests, share, counts[v1], counts[""])
	if counts[""] != 0 {
		t.Errorf("%d requests were answered by neither version", counts[""])
	}
	if share < 8.5 || share > 11.5 {
		t.Errorf("candidate share %.2f%%, want 10%% +- 1.5 points", share)
	}
	for _, m := range f.members() {
		if d := m.node.Drains(); d != 0 {
			t.Errorf("%s drained %d times: a request split must not drain", m.id, d)
		}
	}

	// Leave the fleet on keygate by node for the next step.
	s.command("promote")
	f.await("keygate stable", func() bool { st := s.authState(); return st.Stable == v2 && st.Candidate == "" })
	s.setRollout(config.Rollout{})
	f.await("the config reload", func() bool { return s.authState().By == string(config.ByNode) })
}

func (s *rolloutScenario) nackRollback(t *testing.T) {
	f := s.f
	if f.driver.name != "standin" {
		t.Skipf("%s: no way to make one node alone fail to load a module", f.driver.name)
	}
	v2, bad := types.DigestOf(s.mods.keygate), types.DigestOf(s.mods.hungry)
	weak := f.addNode("weak", nodeOptions{memoryLimitMiB: 24})
	s.awaitSplit(0, v2, v2)

	// Requests with the shared key pass under keygate and under hungry, so
	// none may fail while hungry goes out and comes back.
	l := startLoad(f.members(), []probe{{name: "shared key", header: map[string]string{"x-api-key": sharedKey}, want: http.StatusOK}}, loadWorkers)
	f.writeFile("auth.wasm", s.mods.hungry)
	f.await("hungry rolled back", func() bool {
		st := s.authState()
		return st.Candidate == "" && slices.ContainsFunc(st.Bad, func(b api.BadVersion) bool { return b.Digest == bad })
	})
	s.awaitSplit(0, v2, v2)
	total, failed, notes := l.stop()
	t.Logf("%d requests during the rollout and rollback", total)
	if failed != 0 {
		t.Errorf("%d of %d requests failed: %q", failed, total, notes)
	}
	st := s.authState()
	mark := st.Bad[slices.IndexFunc(st.Bad, func(b api.BadVersion) bool { return b.Digest == bad })]
	if st.Stable != v2 || mark.Node != weak.id || mark.Reason == "" || mark.At.IsZero() {
		t.Errorf("after rollback: stable %s, bad mark %+v; want keygate stable and %s named with a reason and time", st.Stable.Short(), mark, weak.id)
	}
}
