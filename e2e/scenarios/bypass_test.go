package scenarios

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// unsequencedEnv, set to 1, starts every control plane of these scenarios
// with controlplane.Options.Unsequenced: each node's snapshot is sent whole,
// without make-before-break sequencing, so TestBypass shows what the
// sequencing prevents. Nothing outside the test harness reads it.
const unsequencedEnv = "WASMFLEET_UNSEQUENCED"

// unsequenced reports whether unsequencedEnv asks for the unsequenced
// control plane.
func unsequenced() bool { return os.Getenv(unsequencedEnv) == "1" }

// The fleet of TestBypass: bypassNodes stand-in nodes, the last one with a
// memory limit of smallNodeMiB per VM (enough for auth and stamp, too
// little for hungrystamp). Every node costs CPU on each transition (each
// push carries every module inline, twice with the canary twins, and each
// node loads them): under -race on two cores three nodes took about 1.8
// times as long as two, so the fleet is two nodes.
const (
	bypassNodes  = 2
	smallNodeMiB = 24
)

// TestBypass is the bypass invariant over every transition (issue 10, item
// 3). Auth (the real filters/auth, API keys) is first in the chain, followed
// by two or three stamp filters (testdata/guests/stamp, deployed under
// several names, each appending its label to x-ran). Every node takes
// continuous load of authenticated and unauthenticated requests while the
// fleet goes through each transition, and for each one:
//
//   - no unauthenticated request reaches the upstream (a bypass);
//   - no authenticated request fails;
//   - every request that reached the upstream ran each configured filter
//     exactly once, in a configured order: the old chain or the new one
//     while it changes, never a mix, a gap or a filter twice.
//
// The upstream records what it received, keyed by x-bypass-id; the
// client's answers are joined to those records after each transition.
// A transition's window runs from some load before the change until the
// new state serves on every node, every push is answered, and some load
// after that. A clean-up push the control plane sends later (clearing a
// slot no route enables any more) falls into the next transition's window,
// where it is checked all the same.
//
// How a request shows that auth ran exactly once: authenticated requests
// carry the key only in the query (api_keys.query_param). Auth, allowing a
// request, removes the key from the path and sets x-auth-key to the key's
// name; so an upstream record with x-auth-key "shared" and no api_key in the
// query ran auth at least once, and a second run of auth finds no key and
// answers 401 missing_credentials, which counts as a failure (and is named
// as auth running twice). A key in the x-api-key header would not show it:
// auth leaves that header in place and sets x-auth-key with a replace, so a
// second run is invisible. Auth is first in every configured order, and
// each stamp is configured to mark its label with "!" if x-auth-key is
// missing when it runs, which shows a stamp running before auth.
//
// New versions of auth and of the stamp are the same module with a custom
// section appended (retag): another digest, the same code, so a request
// answered by either version looks the same and the chain check needs no
// version knowledge. The NACK candidate is hungrystamp, which stamps like
// stamp but needs more memory than the small node allows.
//
// With WASMFLEET_UNSEQUENCED=1 the control plane runs without the
// make-before-break sequencing; the invariant is expected to fail on some
// transitions then, and the summary at the end gives the counts per
// transition either way. Steps go on after a broken invariant (not after a
// state that was never reached), so one run measures every transition.
//
// The scenario runs twice: with nodes speaking state of the world and
// with nodes speaking delta xDS, whose reports and answers the sequencing
// reads differently (per-resource versions, initial_resource_versions on
// the restart's reconnect).
func TestBypass(t *testing.T) {
	mods := buildBypassModules(t)
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) { bypass(t, mods, delta) })
	}
}

func bypass(t *testing.T, mods bypassModules, delta bool) {
	up := &recorder{saw: map[int64]upstreamRecord{}}
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)

	s := &bypassScenario{up: up, mods: mods, specs: map[string]config.Filter{
		"auth":    {Name: "auth", Required: true, Code: config.CodeInline, Config: queryKeyAuthConfig(sharedKey)},
		"stamp-a": stampFilter("stamp-a", "a"),
		"stamp-b": stampFilter("stamp-b", "b"),
	}, order: []string{"auth", "stamp-a", "stamp-b"}}
	s.f = newFleet(t, func(c *config.Config) {
		c.Managed.Clusters = []config.Cluster{{Name: config.DefaultClusterName, Endpoints: []string{strings.TrimPrefix(upstream.URL, "http://")}}}
		c.Filters = s.filters()
	})
	if s.f.driver.name != "standin" {
		// joinNode starts stand-in nodes, one with a small VM memory
		// limit, on ports of their own.
		t.Skipf("%s: the bypass scenarios run on the stand-in", s.f.driver.name)
	}
	s.f.delta = delta
	// One node in each equal share of auth's buckets, so the by-node
	// rollout moves nodes at each step; the last one has a small memory
	// limit per VM and refuses hungrystamp.
	edges := make([]int, bypassNodes+1)
	for i := range edges {
		edges[i] = i * 10000 / bypassNodes
	}
	s.ids = nodesInBuckets(t, "auth", edges)
	mode := "sequenced"
	if unsequenced() {
		mode = "unsequenced (" + unsequencedEnv + "=1)"
	}
	t.Logf("control plane: %s", mode)
	defer func() { s.summary(t, mode) }()

	s.run(t, []step{
		{"01 first deployment", s.firstDeployment},
		{"02 new auth version rolled out by node", s.newVersionByNode},
		{"03 request split start", s.splitStart},
		{"04 request split step", s.splitStep},
		{"05 request split to 100 and promotion", s.splitPromote},
		{"06 NACK on one node and automatic rollback", s.nackRollback},
		{"07 operator rollback", s.operatorRollback},
		{"08 plugin configuration change", s.configChange},
		{"09 a filter added", s.addFilter},
		{"10 three filters reordered", s.reorder},
		{"11 a filter removed", s.removeFilter},
		{"12 control plane restart", s.restart},
	})
}

// bypassModules are the modules TestBypass deploys.
type bypassModules struct {
	// auth holds versions 1 to 4 of the auth filter: filters/auth, then
	// the same code retagged.
	auth [4][]byte
	// stamp is the chain probe; hungry stamps the same but cannot start
	// on the small node.
	stamp, hungry []byte
	// The digests of the above (hashing 2.5 MB per check would cost more
	// than the check under -race).
	authD           [4]types.Digest
	stampD, hungryD types.Digest
}

// buildBypassModules builds the stamp guests next to the shared modules.
func buildBypassModules(t *testing.T) bypassModules {
	t.Helper()
	const guests = "e2e/scenarios/testdata/guests/"
	var m bypassModules
	var wg sync.WaitGroup
	errs := make([]string, 2)
	for i, b := range []struct {
		pkg string
		dst *[]byte
	}{{guests + "stamp", &m.stamp}, {guests + "hungrystamp", &m.hungry}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb := &goroutineTB{TB: t}
			defer func() { errs[i] = tb.failure }()
			*b.dst = wasmtest.Module(tb, b.pkg)
		}()
	}
	shared := buildModules(t)
	wg.Wait()
	if msg := strings.TrimSpace(strings.Join(errs, "\n")); msg != "" {
		t.Fatal(msg)
	}
	m.auth[0] = shared.auth
	for v := 2; v <= len(m.auth); v++ {
		m.auth[v-1] = retag(shared.auth, "v"+strconv.Itoa(v))
	}
	for i, b := range m.auth {
		m.authD[i] = types.DigestOf(b)
	}
	m.stampD, m.hungryD = types.DigestOf(m.stamp), types.DigestOf(m.hungry)
	return m
}

// retag returns mod with a custom section appended that holds tag: the
// same code under another digest, which the control plane treats as a new
// version (a rebuild with other build metadata looks the same to it).
func retag(mod []byte, tag string) []byte {
	const name = "wasmfleet.scenarios.tag"
	payload := binary.AppendUvarint(nil, uint64(len(name)))
	payload = append(payload, name...)
	payload = append(payload, tag...)
	out := slices.Clone(mod)
	out = append(out, 0) // custom section
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// queryKeyAuthConfig configures auth to accept keys, in the x-api-key
// header or the api_key query parameter, and to name the matched key in
// x-auth-key.
func queryKeyAuthConfig(keys ...string) json.RawMessage {
	return authKeysConfig(map[string]any{"query_param": keyParam, "name_header": authNameHeader}, keys)
}

// stampFilter is a stamp filter named name writing label, checking that
// auth ran before it.
func stampFilter(name, label string) config.Filter {
	return config.Filter{Name: name, Code: config.CodeInline, Config: stampConfig(label)}
}

func stampConfig(label string) json.RawMessage {
	return json.RawMessage(`{"label": "` + label + `", "after": "` + authNameHeader + `"}`)
}

// bypassScenario carries what TestBypass's steps share.
type bypassScenario struct {
	f    *testFleet
	up   *recorder
	mods bypassModules
	ids  []string // node ids in start order; the last is small
	// specs and order are the configured filters; filters() writes them.
	specs map[string]config.Filter
	order []string
	// done is set by a step that got to its end, whatever its counts.
	done bool
	rows []bypassRow
}

// filters is the configured chain, in order.
func (s *bypassScenario) filters() []config.Filter {
	out := make([]config.Filter, 0, len(s.order))
	for _, name := range s.order {
		out = append(out, s.specs[name])
	}
	return out
}

// reloadsApplied is the control plane's count of config file edits it
// applied.
const reloadsApplied = `wasmfleet_config_reloads_total{result="applied"}`

// writeConfig writes the configured chain to the control plane's config
// file and waits until the running control plane has reloaded it. (Status
// does not show every edit: a filter listed without a module yet, or a
// rollout change with no candidate, is not in it.)
func (s *bypassScenario) writeConfig() {
	s.f.t.Helper()
	before, _ := s.f.metric(reloadsApplied)
	s.f.cfg.Filters = s.filters()
	s.f.writeConfig()
	s.f.await("the config reload", func() bool {
		n, _ := s.f.metric(reloadsApplied)
		return n > before
	})
}

// The checks that phases' switched functions combine follow.

// settled is nil when every node is connected and has answered the last
// push of each type on its stream, with an ACK or a NACK. (After a
// restart the control plane may send nothing of a type the node already
// holds; after a NACK and a rollback to what the node still runs, it need
// not send again.)
func (s *bypassScenario) settled() error {
	st := s.f.status()
	for _, m := range s.f.members() {
		ns, ok := nodeStatus(st, m.id)
		if !ok {
			return fmt.Errorf("%s not connected", m.id)
		}
		for _, ts := range ns.Types {
			nacked := ts.LastNack != nil && ts.LastNack.Version == ts.SentVersion
			if ts.SentVersion != "" && ts.SentVersion != ts.AckedVersion && !nacked {
				return fmt.Errorf("%s: %s sent %q, acked %q", m.id, ts.TypeURL, ts.SentVersion, ts.AckedVersion)
			}
		}
	}
	return nil
}

// loaded is nil when every node has each of ds loaded in some slot. Which
// slot is the control plane's choice (a sequenced control plane may fill
// any free slot pair first), so the check does not name one.
func (s *bypassScenario) loaded(ds ...types.Digest) func() error {
	return func() error {
		for _, m := range s.f.members() {
			have := map[types.Digest]bool{}
			for _, st := range m.node.Status().Extensions {
				if st.Code == dataplane.CodeReady {
					have[types.Digest(st.Digest)] = true
				}
			}
			for _, d := range ds {
				if !have[d] {
					return fmt.Errorf("%s has not loaded %s", m.id, s.name(d))
				}
			}
		}
		return nil
	}
}

// name names a module of the scenario for messages.
func (s *bypassScenario) name(d types.Digest) string {
	for v := range s.mods.auth {
		if s.authV(v+1) == d {
			return "auth v" + strconv.Itoa(v+1)
		}
	}
	switch d {
	case s.mods.stampD:
		return "stamp"
	case s.mods.hungryD:
		return "hungrystamp"
	}
	return d.Short()
}

// routeVersions is every node's accepted RDS version.
func (s *bypassScenario) routeVersions() map[string]string {
	out := map[string]string{}
	for _, m := range s.f.members() {
		out[m.id] = m.node.Status().Types[dataplane.RouteType].Version
	}
	return out
}

// routesChanged is nil when every node accepted another RDS version than
// the one in before.
func (s *bypassScenario) routesChanged(before map[string]string) error {
	for _, m := range s.f.members() {
		if v := m.node.Status().Types[dataplane.RouteType].Version; v == before[m.id] {
			return fmt.Errorf("%s: routes still at %s", m.id, v)
		}
	}
	return nil
}

// chainIs is nil when an authenticated request through every node ran
// want (labels joined with commas).
func (s *bypassScenario) chainIs(want string) error {
	for _, m := range s.f.members() {
		a, err := sendVia(slowClient, m.addr(), "/probe?"+keyParam+"="+sharedKey, nil)
		if err != nil {
			return err
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("%s: status %d: %s", m.id, a.status, a.body)
		}
		if got := a.saw.Headers[ranHeader]; got != want {
			return fmt.Errorf("%s: chain %q, want %q", m.id, got, want)
		}
	}
	return nil
}

// filterIs is nil when the control plane has filter name at stable d with
// no candidate.
func (s *bypassScenario) filterIs(name string, d types.Digest) error {
	fs, ok := filterStatus(s.f.status(), name)
	if !ok || fs.Stable != d || fs.Candidate != "" {
		return fmt.Errorf("%s: stable %s candidate %s, want %s and none", name, fs.Stable.Short(), fs.Candidate.Short(), d.Short())
	}
	return nil
}

// all returns the first error of checks, run in order.
func all(checks ...func() error) func() error {
	return func() error {
		for _, c := range checks {
			if err := c(); err != nil {
				return err
			}
		}
		return nil
	}
}

// chains builds an allowed list from comma-joined label sequences.
func chains(cs ...string) [][]string {
	out := make([][]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, strings.Split(c, ","))
	}
	return out
}

// authV is the digest of auth version v (1 to 4).
func (s *bypassScenario) authV(v int) types.Digest { return s.mods.authD[v-1] }

// awaitRollout waits until the control plane applied auth's rollout
// settings as status shows them.
func (s *bypassScenario) awaitRollout(by config.RolloutBy, steps []int) {
	s.f.t.Helper()
	s.f.await(fmt.Sprintf("auth rollout by %s, steps %v", by, steps), func() bool {
		fs, ok := filterStatus(s.f.status(), "auth")
		return ok && fs.By == string(by) && slices.Equal(fs.Steps, steps)
	})
}

// The steps.

// firstDeployment: the control plane holds the chain before any node
// exists; each node that joins must answer its very first requests with the
// whole chain. (Nodes that serve before the chain exists would pass every
// request, which is not a bypass but the absence of auth.) The load starts
// once the first node serves and takes in the others as they join.
func (s *bypassScenario) firstDeployment(t *testing.T) {
	f := s.f
	f.writeFile("auth.wasm", s.mods.auth[0])
	f.writeFile("stamp-a.wasm", s.mods.stamp)
	f.writeFile("stamp-b.wasm", s.mods.stamp)
	want := map[string]types.Digest{"auth": s.authV(1), "stamp-a": s.mods.stampD, "stamp-b": s.mods.stampD}
	s.awaitSwitch("the control plane admitted the chain", func() error {
		st := f.status()
		for name, d := range want {
			if fs, ok := filterStatus(st, name); !ok || (fs.Stable != d && fs.Candidate != d) {
				return fmt.Errorf("%s not admitted yet", name)
			}
		}
		return nil
	})
	s.joinNode(s.ids[0], nodeOptions{})
	s.underLoad(t, bypassBefore/2, chains("a,b"), phase{
		name: "every node joined and runs auth, a, b",
		change: func(*chainLoad) {
			for _, id := range s.ids[1 : len(s.ids)-1] {
				s.joinNode(id, nodeOptions{})
			}
			s.joinNode(s.ids[len(s.ids)-1], nodeOptions{memoryLimitMiB: smallNodeMiB})
		},
		switched: all(
			s.loaded(s.authV(1), s.mods.stampD),
			func() error {
				for name, d := range want {
					if err := s.filterIs(name, d); err != nil {
						return err
					}
				}
				return nil
			},
			s.settled,
			func() error { return s.chainIs("a,b") },
		),
	})
}

// joinNode is addNode waiting up to switchTimeout for the node to serve: a
// node loads every filter of the chain before it serves, which under load
// and -race can take longer than awaitTimeout.
func (s *bypassScenario) joinNode(id string, opts nodeOptions) {
	s.f.t.Helper()
	m := s.f.startNode(id, nil, opts)
	s.awaitSwitch("node "+id+" serves "+listenerName, func() error {
		if m.addr() == "" {
			return errors.New("not serving yet")
		}
		return nil
	})
}

// newVersionByNode rolls auth v2 out by node in two steps.
func (s *bypassScenario) newVersionByNode(t *testing.T) {
	steps := []int{50, 100}
	s.specs["auth"] = withRollout(s.specs["auth"], config.Rollout{Steps: steps, Interval: config.Duration(300 * time.Millisecond)})
	s.writeConfig()
	s.awaitRollout(config.ByNode, steps)
	s.underLoad(t, bypassBefore, chains("a,b"), phase{
		name:   "auth v2 stable on every node",
		change: func(*chainLoad) { s.f.writeFile("auth.wasm", s.mods.auth[1]) },
		switched: all(
			s.loaded(s.authV(2), s.mods.stampD),
			func() error { return s.filterIs("auth", s.authV(2)) },
			s.settled,
		),
	})
}

func withRollout(f config.Filter, r config.Rollout) config.Filter {
	f.Rollout = r
	return f
}

func percent(p int) *int { return &p }

// splitStart sends auth v3 to 30% of requests: every node gets both
// versions and routes that enable the canary slot.
func (s *bypassScenario) splitStart(t *testing.T) {
	s.specs["auth"] = withRollout(s.specs["auth"], config.Rollout{By: config.ByRequest, Percent: percent(30)})
	s.writeConfig()
	s.awaitRollout(config.ByRequest, nil)
	routes := s.routeVersions()
	s.underLoad(t, bypassBefore, chains("a,b"), phase{
		name:   "auth v3 on 30% of requests on every node",
		change: func(*chainLoad) { s.f.writeFile("auth.wasm", s.mods.auth[2]) },
		switched: all(
			s.loaded(s.authV(2), s.authV(3), s.mods.stampD),
			func() error { return s.routesChanged(routes) },
			func() error {
				if fs, _ := filterStatus(s.f.status(), "auth"); fs.Candidate != s.authV(3) || fs.Percent != 30 {
					return fmt.Errorf("auth candidate %s at %d%%, want v3 at 30%%", fs.Candidate.Short(), fs.Percent)
				}
				return nil
			},
			s.settled,
		),
	})
}

// setSplit edits auth's request split percent.
func (s *bypassScenario) setSplit(p int) {
	s.specs["auth"] = withRollout(s.specs["auth"], config.Rollout{By: config.ByRequest, Percent: percent(p)})
	s.writeConfig()
}

// splitStep moves the split from 30% to 60%: routes only.
func (s *bypassScenario) splitStep(t *testing.T) {
	routes := s.routeVersions()
	s.underLoad(t, bypassBefore, chains("a,b"), phase{
		name:   "auth v3 on 60% of requests on every node",
		change: func(*chainLoad) { s.setSplit(60) },
		switched: all(
			func() error { return s.routesChanged(routes) },
			func() error {
				if fs, _ := filterStatus(s.f.status(), "auth"); fs.Candidate != s.authV(3) || fs.Percent != 60 {
					return fmt.Errorf("auth candidate %s at %d%%, want v3 at 60%%", fs.Candidate.Short(), fs.Percent)
				}
				return nil
			},
			s.settled,
		),
	})
}

// splitPromote takes the split to 100%: v3 becomes the only version and is
// promoted once every node ACKed it.
func (s *bypassScenario) splitPromote(t *testing.T) {
	routes := s.routeVersions()
	s.underLoad(t, bypassBefore, chains("a,b"), phase{
		name:   "auth v3 stable, alone on every node",
		change: func(*chainLoad) { s.setSplit(100) },
		switched: all(
			func() error { return s.routesChanged(routes) },
			s.loaded(s.authV(3), s.mods.stampD),
			func() error { return s.filterIs("auth", s.authV(3)) },
			s.settled,
		),
	})
}

// nackRollback sends hungrystamp as stamp-b's next version: the small node
// refuses it, and the control plane rolls it back on the others. Two
// phases of one load: until the refusal is marked, then until every node
// is back on stamp.
func (s *bypassScenario) nackRollback(t *testing.T) {
	f := s.f
	weak := f.members()[len(f.members())-1]
	bad, stamp := s.mods.hungryD, s.mods.stampD
	nacks := weak.node.Status().Types[dataplane.ExtensionType].Nacks
	s.underLoad(t, bypassBefore, chains("a,b"),
		phase{
			name:   "candidate NACKed on one node",
			change: func(*chainLoad) { f.writeFile("stamp-b.wasm", s.mods.hungry) },
			switched: func() error {
				if n := weak.node.Status().Types[dataplane.ExtensionType].Nacks; n <= nacks {
					return fmt.Errorf("%s has not refused hungrystamp", weak.id)
				}
				fs, _ := filterStatus(f.status(), "stamp-b")
				if !slices.ContainsFunc(fs.Bad, func(b api.BadVersion) bool { return b.Digest == bad && b.Node == weak.id }) {
					return fmt.Errorf("stamp-b has no bad mark for hungrystamp from %s: %+v", weak.id, fs.Bad)
				}
				return nil
			},
		},
		phase{
			name: "automatic rollback",
			switched: all(
				s.loaded(s.authV(3), stamp),
				func() error { return s.filterIs("stamp-b", stamp) },
				s.settled,
			),
		},
	)
	t.Logf("nodes that ran hungrystamp: %v", f.everSeen(bad))
	// The directory holds the stable module again: a no-op for the fleet.
	f.writeFile("stamp-b.wasm", s.mods.stamp)
}

// operatorRollback: auth v4 split to 30% of requests (held: the next step
// is an hour away), then rolled back through the admin API.
func (s *bypassScenario) operatorRollback(t *testing.T) {
	f := s.f
	steps := []int{30, 100}
	s.specs["auth"] = withRollout(s.specs["auth"], config.Rollout{By: config.ByRequest, Steps: steps, Interval: config.Duration(time.Hour)})
	s.writeConfig()
	s.awaitRollout(config.ByRequest, steps)
	routes := s.routeVersions()
	f.writeFile("auth.wasm", s.mods.auth[3])
	s.awaitSwitch("auth v4 on 30% of requests on every node", all(
		s.loaded(s.authV(3), s.authV(4), s.mods.stampD),
		func() error { return s.routesChanged(routes) },
		s.settled,
	))
	routes = s.routeVersions()
	s.underLoad(t, bypassBefore, chains("a,b"), phase{
		name:   "auth v4 rolled back by the operator on every node",
		change: func(*chainLoad) { s.command("auth", "rollback") },
		switched: all(
			func() error { return s.routesChanged(routes) },
			func() error { return s.filterIs("auth", s.authV(3)) },
			s.settled,
		),
	})
	// The directory holds the stable module again: a no-op for the fleet.
	f.writeFile("auth.wasm", s.mods.auth[2])
}

// command posts an operator command to the admin API.
func (s *bypassScenario) command(filter, action string) {
	s.f.t.Helper()
	resp, err := adminClient.Post("http://"+s.f.cp.addrs.Admin+"/api/v1/rollout/"+filter+"/"+action, "application/json", nil)
	if err != nil {
		s.f.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.f.t.Fatalf("rollout %s %s: %s", action, filter, resp.Status)
	}
}

// configChange edits two plugin configurations in one config file write:
// auth accepts a second key, and stamp-b writes "B".
func (s *bypassScenario) configChange(t *testing.T) {
	s.underLoad(t, bypassBefore, chains("a,b", "a,B"), phase{
		name: "auth accepts alpha and stamp-b writes B on every node",
		change: func(*chainLoad) {
			auth := s.specs["auth"]
			auth.Config = queryKeyAuthConfig(sharedKey, alphaKey)
			s.specs["auth"] = auth
			s.specs["stamp-b"] = stampFilter("stamp-b", "B")
			s.writeConfig()
		},
		switched: all(
			s.settled,
			func() error { return s.chainIs("a,B") },
			func() error {
				for _, m := range s.f.members() {
					if a, err := sendVia(slowClient, m.addr(), "/probe?"+keyParam+"="+alphaKey, nil); err != nil || a.status != http.StatusOK {
						return fmt.Errorf("%s: alpha key not accepted yet (%d, %v)", m.id, a.status, err)
					}
				}
				return nil
			},
		),
	})
}

// addFilter puts stamp-c between stamp-a and stamp-b: the config lists it,
// then its module arrives, and stamp-b moves one slot down.
func (s *bypassScenario) addFilter(t *testing.T) {
	f := s.f
	s.underLoad(t, bypassBefore, chains("a,B", "a,c,B"), phase{
		name: "every node runs a, c, B",
		change: func(*chainLoad) {
			// Listed first: a module of an unlisted filter would join the
			// chain at its end.
			s.specs["stamp-c"] = stampFilter("stamp-c", "c")
			s.order = []string{"auth", "stamp-a", "stamp-c", "stamp-b"}
			s.writeConfig()
			f.writeFile("stamp-c.wasm", s.mods.stamp)
		},
		switched: all(
			func() error { return s.filterIs("stamp-c", s.mods.stampD) },
			s.settled,
			func() error { return s.chainIs("a,c,B") },
		),
	})
}

// reorder moves stamp-b to the front of the three stamps: every stamp
// slot changes what it holds.
func (s *bypassScenario) reorder(t *testing.T) {
	s.underLoad(t, bypassBefore, chains("a,c,B", "B,a,c"), phase{
		name: "every node runs B, a, c",
		change: func(*chainLoad) {
			s.order = []string{"auth", "stamp-b", "stamp-a", "stamp-c"}
			s.writeConfig()
		},
		switched: all(s.settled, func() error { return s.chainIs("B,a,c") }),
	})
}

// removeFilter deletes stamp-a's module, which retires it (taking it out
// of the config file alone would not: a filter with a module but not
// listed runs at the end of the chain); stamp-c moves up a slot and the
// last slot is no longer enabled.
func (s *bypassScenario) removeFilter(t *testing.T) {
	f := s.f
	s.underLoad(t, bypassBefore, chains("B,a,c", "B,c"), phase{
		name: "every node runs B, c",
		change: func(*chainLoad) {
			if err := os.Remove(filepath.Join(f.cfg.WatchDir, "stamp-a.wasm")); err != nil {
				t.Fatal(err)
			}
		},
		switched: all(
			func() error {
				if fs, ok := filterStatus(f.status(), "stamp-a"); ok && !fs.Retired {
					return errors.New("stamp-a not retired yet")
				}
				return nil
			},
			s.settled,
			func() error { return s.chainIs("B,c") },
		),
	})
}

// restart stops the control plane under load, lets the nodes serve without
// it, and starts it again: every node reconnects and keeps serving the
// chain. (Whether the restart changes any node's xDS state is TestFleet's
// business; here a restart can land while the control plane still has a
// clean-up push for the previous step to send, which it then sends.)
func (s *bypassScenario) restart(t *testing.T) {
	f := s.f
	streams := map[string]int{}
	for _, m := range f.members() {
		streams[m.id] = m.node.Status().Streams
	}
	s.underLoad(t, bypassBefore, chains("B,c"), phase{
		name: "every node reconnected and acked",
		change: func(l *chainLoad) {
			f.stopControlPlane()
			down := l.count()
			s.awaitSwitch("traffic while the control plane is down", func() error { return l.atLeast(down + bypassBefore) })
			f.startControlPlane()
		},
		switched: all(
			func() error {
				for _, m := range f.members() {
					if n := m.node.Status().Streams; n <= streams[m.id] {
						return fmt.Errorf("%s: %d streams, as before the restart", m.id, n)
					}
				}
				return nil
			},
			s.settled,
			func() error { return s.chainIs("B,c") },
		),
	})
}
