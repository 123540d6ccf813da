package scenarios

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// fleetSize is how many nodes the scenarios run on; the last one is small
// (see TestFleet).
const fleetSize = 3

// swapLoad is how many requests the fleet must answer across a swap, and
// how many of them must come before the change and after every node
// switched.
const (
	swapLoad    = 2000
	swapEachWay = 500
	loadWorkers = 4
)

// Chain positions of the initial configuration.
const (
	posAuth = iota
	posLogging
	posTransform
)

// Probes every swap must answer the same way throughout.
var (
	withKey    = probe{name: "shared key", header: map[string]string{"x-api-key": sharedKey}, want: 200}
	withoutKey = probe{name: "no key", want: 401}
)

// TestFleet runs the scenarios in order on one fleet: a control plane,
// three nodes and an upstream. Each step starts from the state the one
// before left (auth v1, then new settings, then keygate as auth v2, ...),
// which is also what an operator's day looks like; a step that fails stops
// the ones after it.
//
// The third node has a small memory limit per Wasm VM (stand-in only), so
// that one node, and only one, fails to load a module the control plane
// accepted.
func TestFleet(t *testing.T) {
	mods := buildModules(t)
	filters := []config.Filter{
		// Inline code: a swap is applied when it arrives and a load failure
		// is a NACK. Uncached remote code replacing a filter on a serving
		// listener is never fetched by Envoy (e2e/standin/SIMPLIFICATIONS.md),
		// and every module here lands in a slot that is already serving.
		{Name: "auth", Required: true, Code: config.CodeInline, Config: authConfig(sharedKey, alphaKey)},
		{Name: "logging", Code: config.CodeInline, Config: loggingConfig},
		{Name: "transform", Code: config.CodeInline, Config: transformConfig},
	}
	f := newFleet(t, func(c *config.Config) { c.Filters = filters })
	small := nodeOptions{}
	if f.driver.name == "standin" {
		small.memoryLimitMiB = 24
	}
	for i := 1; i <= fleetSize; i++ {
		opts := nodeOptions{}
		if i == fleetSize {
			opts = small
		}
		f.addNode(fmt.Sprintf("node-%d", i), opts)
	}
	s := &scenario{f: f, mods: mods, filters: filters, small: small}

	runSteps(t, f, []step{
		{"1 drop auth: the fleet enforces it within 2s", s.dropAuth},
		{"2a auth.yaml changes accepted keys under load", s.settingsSwap},
		{"2b auth module swap under load fails no request", s.moduleSwap},
		{"3 broken modules and config are refused", s.refused},
		{"4 a node fails to load the candidate: NACK and rollback", s.nodeNACK},
		{"5 control plane restart changes nothing", s.restart},
		{"6 three filters in order, reordered without a drain", s.chainOrder},
		{"7 late node gets current versions, leaving node is dropped", s.joinLeave},
	})
}

// scenario carries what the steps share.
type scenario struct {
	f       *testFleet
	mods    modules
	filters []config.Filter
	small   nodeOptions
}

// authBehaves sends one request with and one without a key through every
// node and reports the first node that does not answer as the auth filter
// (which names the matched key upstream) or, with wantKeygate, as keygate
// (which marks the request x-auth-version) does.
func (s *scenario) authBehaves(wantKeygate bool) error {
	for _, m := range s.f.members() {
		a, err := send(m.addr(), "/probe", withoutKey.header)
		if err != nil {
			return err
		}
		if a.status != 401 {
			return fmt.Errorf("%s: no key: status %d, want 401", m.id, a.status)
		}
		if got := a.header.Get("x-auth-version") == "keygate"; got != wantKeygate {
			return fmt.Errorf("%s: 401 from keygate is %v, want %v", m.id, got, wantKeygate)
		}
		a, err = send(m.addr(), "/probe", withKey.header)
		if err != nil {
			return err
		}
		if a.status != 200 {
			return fmt.Errorf("%s: shared key: status %d, want 200: %s", m.id, a.status, a.body)
		}
		if wantKeygate && a.saw.Headers["x-auth-version"] != "keygate" {
			return fmt.Errorf("%s: upstream saw %v, want x-auth-version: keygate", m.id, a.saw.Headers)
		}
		if !wantKeygate && a.saw.Headers["x-auth-key"] != "shared" {
			return fmt.Errorf("%s: upstream saw %v, want x-auth-key: shared", m.id, a.saw.Headers)
		}
	}
	return nil
}

// link is what a node's routes run at one position of the chain: the filter
// and the module in its pair's stable slot.
type link struct {
	filter string
	digest types.Digest
}

// chain is what the node's routes run, in order, read from the RDS version
// it accepted (which names the slot pair of each filter: the control plane
// chooses pairs per node, so that a reorder never breaks a route) and the
// modules loaded in those slots. It is nil when the routes cannot be read.
func (m *member) chain() []link {
	st := m.node.Status()
	links, ok := snapshot.ParseRoutes(st.Types[dataplane.RouteType].Version)
	if !ok {
		return nil
	}
	out := make([]link, 0, len(links))
	for _, l := range links {
		ext := st.Extensions[snapshot.SlotName(l.Pair, false)]
		if ext.Code != dataplane.CodeReady {
			return nil
		}
		out = append(out, link{filter: l.Filter, digest: types.Digest(ext.Digest)})
	}
	return out
}

// runsAt reports whether the node's routes run filter at module d in chain
// position pos.
func (m *member) runsAt(pos int, filter string, d types.Digest) bool {
	c := m.chain()
	return pos < len(c) && c[pos] == link{filter: filter, digest: d}
}

// awaitStable waits until the control plane has promoted d for filter and
// every node runs it at pos.
func (s *scenario) awaitStable(filter string, pos int, d types.Digest) {
	s.f.t.Helper()
	s.f.await(fmt.Sprintf("%s %s stable and running everywhere", filter, s.mods.name(d)), func() bool {
		fs, ok := filterStatus(s.f.status(), filter)
		if !ok || fs.Stable != d || fs.Candidate != "" {
			return false
		}
		for _, m := range s.f.members() {
			if !m.runsAt(pos, filter, d) {
				return false
			}
		}
		return true
	})
}

func (s *scenario) dropAuth(t *testing.T) {
	f := s.f
	for _, m := range f.members() {
		if a := mustSend(t, m.addr(), "/before", nil); a.status != 200 {
			t.Fatalf("%s before auth: status %d, want 200 (no filter yet)", m.id, a.status)
		}
	}
	written := time.Now()
	f.writeFile("auth.wasm", s.mods.auth)
	// How fast is BenchmarkDropToEnforced's claim; this only waits.
	f.awaitErr("every node enforces auth", func() error { return s.authBehaves(false) })
	t.Logf("every node enforced auth %v after the write", time.Since(written).Round(time.Millisecond))
	s.awaitStable("auth", posAuth, types.DigestOf(s.mods.auth))
}

func (s *scenario) settingsSwap(t *testing.T) {
	f := s.f
	d := types.DigestOf(s.mods.auth)
	swapUnderLoad(t, f, func() {
		f.writeFile("auth.yaml", settingsYAML(authConfig(sharedKey, betaKey)))
	}, func() error {
		for _, m := range f.members() {
			if a, err := send(m.addr(), "/beta", map[string]string{"x-api-key": betaKey}); err != nil || a.status != 200 {
				return fmt.Errorf("%s: beta key not accepted yet (%d, %v)", m.id, a.status, err)
			}
			if a, err := send(m.addr(), "/alpha", map[string]string{"x-api-key": alphaKey}); err != nil || a.status != 401 {
				return fmt.Errorf("%s: alpha key still accepted (%d, %v)", m.id, a.status, err)
			}
		}
		return nil
	})
	// Settings are not a version: the module stays, only its config changed.
	fs, _ := filterStatus(f.status(), "auth")
	if fs.Stable != d || fs.Candidate != "" || fs.LastError != "" {
		t.Errorf("auth status %+v, want stable %s, no candidate, no error", fs, d.Short())
	}
	for _, m := range f.members() {
		if !m.runsAt(posAuth, "auth", d) {
			t.Errorf("%s does not run %s any more", m.id, d.Short())
		}
	}
	if vs := f.history("auth"); len(vs) != 1 {
		t.Errorf("auth history has %d versions, want 1", len(vs))
	}
}

func (s *scenario) moduleSwap(t *testing.T) {
	f := s.f
	v2 := types.DigestOf(s.mods.keygate)
	swapUnderLoad(t, f, func() {
		f.writeFile("auth.wasm", s.mods.keygate)
	}, func() error {
		for _, m := range f.members() {
			if !m.runsAt(posAuth, "auth", v2) {
				return fmt.Errorf("%s does not run keygate yet", m.id)
			}
		}
		return s.authBehaves(true)
	})
	s.awaitStable("auth", posAuth, v2)
	for _, m := range f.members() {
		// keygate reads the same settings: beta in, alpha and bogus out.
		for key, want := range map[string]int{betaKey: 200, alphaKey: 401, bogusKey: 401} {
			if a := mustSend(t, m.addr(), "/v2", map[string]string{"x-api-key": key}); a.status != want {
				t.Errorf("%s: key %s: status %d, want %d", m.id, key, a.status, want)
			}
		}
	}
	if vs := f.history("auth"); len(vs) != 2 || vs[len(vs)-1].Digest != v2 {
		t.Errorf("auth history %+v, want auth then keygate", vs)
	}
}

// swapUnderLoad runs change while every node serves continuous requests
// with and without a key, waits until switched holds, and fails on any
// request that did not get its expected status.
func swapUnderLoad(t *testing.T, f *testFleet, change func(), switched func() error) {
	t.Helper()
	l := startLoad(f.members(), []probe{withKey, withoutKey}, loadWorkers)
	defer func() {
		total, failed, notes := l.stop()
		t.Logf("%d requests across the swap, %d failed", total, failed)
		if failed > 0 {
			t.Errorf("%d of %d requests failed across the swap; first: %s", failed, total, strings.Join(notes, "; "))
		}
		if total < swapLoad {
			t.Errorf("only %d requests across the swap, want at least %d", total, swapLoad)
		}
	}()
	f.await("load before the change", func() bool { return l.count() >= swapEachWay })
	changedAt := time.Now()
	change()
	f.awaitErr("every node switched", switched)
	t.Logf("every node switched %v after the change", time.Since(changedAt).Round(time.Millisecond))
	after := l.count()
	f.await("load after the switch", func() bool {
		n := l.count()
		return n-after >= swapEachWay && n >= swapLoad
	})
}

// settingsYAML is a filter's NAME.yaml setting its plugin configuration.
func settingsYAML(cfg json.RawMessage) []byte {
	return []byte("config: " + string(cfg) + "\n")
}

func (s *scenario) refused(t *testing.T) {
	f := s.f
	v2 := types.DigestOf(s.mods.keygate)
	tests := []struct {
		name string
		file string
		data []byte
		// module is set when data is a module: its digest must go nowhere.
		module bool
		// wantErr is part of the reason the control plane must show.
		wantErr string
	}{
		{name: "truncated module", file: "auth.wasm", data: s.mods.keygate[:len(s.mods.keygate)/2], module: true, wantErr: "auth.wasm"},
		{name: "wasm without the proxy-wasm ABI", file: "auth.wasm", data: s.mods.noabi, module: true, wantErr: "proxy_"},
		{name: "configuration the module rejects", file: "auth.yaml", data: settingsYAML(json.RawMessage(`{"realm": "fleet", "api_keys": {"keys": []}}`)), wantErr: "auth.yaml"},
		{name: "configuration that is not a filter entry", file: "auth.yaml", data: []byte("config: {realm: fleet}\nmode: fast\n"), wantErr: "auth.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			before := map[string]dataplane.Status{}
			for _, m := range f.members() {
				before[m.id] = m.node.Status()
			}
			prev, _ := filterStatus(f.status(), "auth")
			f.writeFile(tc.file, tc.data)
			var fs = prev
			f.await("the control plane to refuse "+tc.name, func() bool {
				fs, _ = filterStatus(f.status(), "auth")
				return fs.LastError != "" && fs.LastErrorAt.After(prev.LastErrorAt)
			})
			t.Logf("last_error: %s", fs.LastError)
			if !strings.Contains(fs.LastError, tc.wantErr) {
				t.Errorf("last_error %q does not mention %q", fs.LastError, tc.wantErr)
			}
			if fs.Stable != v2 || fs.Candidate != "" {
				t.Errorf("auth stable %s candidate %s, want stable keygate and no candidate", fs.Stable.Short(), fs.Candidate.Short())
			}
			if err := s.authBehaves(true); err != nil {
				t.Errorf("fleet stopped serving keygate: %v", err)
			}
			for _, m := range f.members() {
				if after := m.node.Status(); !sameXDS(before[m.id], after) {
					t.Errorf("%s received an update: before %+v, after %+v", m.id, before[m.id], after)
				}
			}
			if tc.module {
				d := types.DigestOf(tc.data)
				if seen := f.everSeen(d); len(seen) > 0 {
					t.Errorf("refused module %s reached %v", d.Short(), seen)
				}
				if code := f.moduleStatus(d); code != 404 {
					t.Errorf("module server answers %d for refused %s, want 404", code, d.Short())
				}
				for _, v := range f.history("auth") {
					if v.Digest == d {
						t.Errorf("refused module %s is in the history", d.Short())
					}
				}
			}
		})
	}
	// Put the directory back the way the fleet runs it; both are no-ops
	// for the fleet (same module, same settings as before).
	f.t = t
	f.writeFile("auth.wasm", s.mods.keygate)
	f.writeFile("auth.yaml", settingsYAML(authConfig(sharedKey, betaKey)))
	f.await("auth.yaml accepted again", func() bool {
		fs, _ := filterStatus(f.status(), "auth")
		return fs.LastError == ""
	})
}

// sameXDS reports whether a node holds the same xDS state: every type's
// accepted version, and in every ECDS slot the same kind of filter running
// the same code. (A slot's own Version is not compared: what matters is
// the code it runs.)
func sameXDS(a, b dataplane.Status) bool {
	if len(a.Types) != len(b.Types) || len(a.Extensions) != len(b.Extensions) {
		return false
	}
	for k, v := range a.Types {
		if b.Types[k].Version != v.Version {
			return false
		}
	}
	for k, v := range a.Extensions {
		if w := b.Extensions[k]; w.Type != v.Type || w.Digest != v.Digest || w.Code != v.Code {
			return false
		}
	}
	return true
}

func (s *scenario) nodeNACK(t *testing.T) {
	if s.small == (nodeOptions{}) {
		t.Skipf("%s: no way to make one node alone fail to load a module", s.f.driver.name)
	}
	f := s.f
	v2, bad := types.DigestOf(s.mods.keygate), types.DigestOf(s.mods.hungry)
	weak := f.members()[fleetSize-1].id
	before := map[string]dataplane.TypeStatus{}
	for _, m := range f.members() {
		before[m.id] = m.node.Status().Types[dataplane.ExtensionType]
	}
	f.writeFile("auth.wasm", s.mods.hungry)
	var fs api.Filter
	f.await("the candidate rolled back", func() bool {
		fs, _ = filterStatus(f.status(), "auth")
		return slices.ContainsFunc(fs.Bad, func(b api.BadVersion) bool { return b.Digest == bad })
	})
	mark := fs.Bad[slices.IndexFunc(fs.Bad, func(b api.BadVersion) bool { return b.Digest == bad })]
	t.Logf("bad mark: node %s: %s", mark.Node, mark.Reason)
	if mark.Node != weak || mark.Reason == "" {
		t.Errorf("bad mark %+v, want node %s with a reason", mark, weak)
	}
	if fs.Stable != v2 || fs.Candidate != "" {
		t.Errorf("auth stable %s candidate %s, want keygate and none", fs.Stable.Short(), fs.Candidate.Short())
	}
	if !strings.Contains(fs.LastError, "rolled back") || !strings.Contains(fs.LastError, weak) {
		t.Errorf("last_error %q does not say the candidate was rolled back because of %s", fs.LastError, weak)
	}
	ns, ok := nodeStatus(f.status(), weak)
	if !ok {
		t.Fatalf("%s missing from status", weak)
	}
	var nack string
	for _, ts := range ns.Types {
		if ts.TypeURL == dataplane.ExtensionType && ts.LastNack != nil {
			nack = ts.LastNack.Reason
		}
	}
	t.Logf("NACK of %s in status: %s", weak, nack)
	if nack == "" || nack != mark.Reason {
		t.Errorf("status of %s shows NACK %q, want the reason of the bad mark %q", weak, nack, mark.Reason)
	}
	// Every push is timed until its answer, NACKs included.
	for _, result := range []string{"ack", "nack"} {
		sample := `wasmfleet_xds_response_seconds_count{result="` + result + `",type="ecds"}`
		if n, ok := f.metric(sample); !ok || n < 1 {
			t.Errorf("/metrics: %s = %v (present %v), want at least 1", sample, n, ok)
		}
	}
	// The rollback restores the same content, so every node must end on
	// the ECDS version it had before. The nodes that loaded the candidate
	// must have processed two responses since (the candidate, then the
	// rollback), not merely still be on the old version because the
	// candidate is still loading. The node that refused it kept its config.
	// If go-control-plane re-sends the refused version before the rollback
	// reaches the cache, the node ACKs it without loading it, as Envoy does
	// (e2e/standin/SIMPLIFICATIONS.md), and then loads its old config again
	// when the rollback arrives.
	f.awaitErr("every node back on its previous ECDS version", func() error {
		for _, m := range f.members() {
			was, now := before[m.id], m.node.Status().Types[dataplane.ExtensionType]
			switch {
			case m.id == weak && now.Nacks <= was.Nacks:
				return fmt.Errorf("%s has not refused the candidate", m.id)
			case m.id != weak && now.Acks < was.Acks+2:
				return fmt.Errorf("%s has accepted %d ECDS responses since the candidate, want 2", m.id, now.Acks-was.Acks)
			case m.id != weak && now.Rejected != "":
				return fmt.Errorf("%s rejected ECDS %s: %s", m.id, now.Rejected, now.Error)
			case now.Version != was.Version:
				return fmt.Errorf("%s: ECDS version %s, want %s", m.id, now.Version, was.Version)
			case !m.runsAt(posAuth, "auth", v2):
				return fmt.Errorf("%s does not run keygate", m.id)
			}
		}
		return nil
	})
	s.awaitStable("auth", posAuth, v2)
	if err := s.authBehaves(true); err != nil {
		t.Errorf("fleet not back on keygate: %v", err)
	}
	if seen := f.everSeen(bad); slices.Contains(seen, weak) {
		t.Errorf("%s, which refused it, ran the candidate", weak)
	}
	// The directory holds the stable module again: a no-op for the fleet.
	f.writeFile("auth.wasm", s.mods.keygate)
}

func (s *scenario) restart(t *testing.T) {
	f := s.f
	before := map[string]dataplane.Status{}
	drains := map[string]int{}
	for _, m := range f.members() {
		before[m.id], drains[m.id] = m.node.Status(), m.node.Drains()
	}
	l := startLoad(f.members(), []probe{withKey, withoutKey}, loadWorkers)
	f.await("load before the restart", func() bool { return l.count() >= 200 })
	f.stopControlPlane()
	down := l.count()
	f.await("traffic while the control plane is down", func() bool { return l.count()-down >= 300 })
	f.startControlPlane()
	f.awaitErr("every node reconnected and acked", func() error {
		st := f.status()
		for _, m := range f.members() {
			if n := m.node.Status().Streams; n <= before[m.id].Streams {
				return fmt.Errorf("%s: %d streams, as before the restart", m.id, n)
			}
			ns, ok := nodeStatus(st, m.id)
			if !ok {
				return fmt.Errorf("%s not connected", m.id)
			}
			want := before[m.id].Types[dataplane.ExtensionType].Version
			for _, ts := range ns.Types {
				if ts.TypeURL == dataplane.ExtensionType && ts.AckedVersion != want {
					return fmt.Errorf("%s acked ECDS %q, want %q", m.id, ts.AckedVersion, want)
				}
			}
		}
		return nil
	})
	up := l.count()
	f.await("traffic after the restart", func() bool { return l.count()-up >= 300 })
	total, failed, notes := l.stop()
	t.Logf("%d requests across the restart (%d while the control plane was down), %d failed", total, up-down, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed across the restart; first: %s", failed, total, strings.Join(notes, "; "))
	}
	for _, m := range f.members() {
		after := m.node.Status()
		if !sameXDS(before[m.id], after) {
			t.Errorf("%s: xDS state changed across the restart:\nbefore %+v\nafter  %+v", m.id, before[m.id], after)
		}
		if d := m.node.Drains(); d != drains[m.id] {
			t.Errorf("%s: %d drains across the restart", m.id, d-drains[m.id])
		}
	}
	fs, _ := filterStatus(f.status(), "auth")
	if v2 := types.DigestOf(s.mods.keygate); fs.Stable != v2 {
		t.Errorf("after restart auth stable is %s, want keygate", fs.Stable.Short())
	}
}

// logged finds the logging filter's access line for path on a node and
// returns its fields.
func logged(n dataplane.Node, path string) (map[string]any, bool) {
	for _, l := range n.Logs() {
		var fields map[string]any
		if json.Unmarshal([]byte(l.Message), &fields) != nil {
			continue
		}
		if fields["msg"] == "access" && fields["path"] == path {
			return fields, true
		}
	}
	return nil, false
}

func (s *scenario) chainOrder(t *testing.T) {
	f := s.f
	auth, logging, transform := types.DigestOf(s.mods.keygate), types.DigestOf(s.mods.logging), types.DigestOf(s.mods.transform)
	f.writeFile("logging.wasm", s.mods.logging)
	f.writeFile("transform.wasm", s.mods.transform)
	s.awaitStable("logging", posLogging, logging)
	s.awaitStable("transform", posTransform, transform)

	legacy := map[string]string{"x-legacy-key": sharedKey}
	for i, m := range f.members() {
		if a := mustSend(t, m.addr(), "/chain", nil); a.status != 401 {
			t.Errorf("%s: no key: status %d, want 401", m.id, a.status)
		}
		path := fmt.Sprintf("/chain/%d", i)
		a := mustSend(t, m.addr(), path, withKey.header)
		if a.status != 200 || a.saw.Headers["x-transformed"] != "1" || a.saw.ServedBy != "wasmfleet" {
			t.Errorf("%s: status %d, upstream saw %v, served_by %q: want 200, x-transformed: 1, served_by wasmfleet",
				m.id, a.status, a.saw.Headers, a.saw.ServedBy)
		}
		fields, ok := logged(m.node, path)
		if !ok {
			t.Errorf("%s: no access log line for %s", m.id, path)
		} else if _, ok := fields["req.x-transformed"]; ok {
			t.Errorf("%s: logging (position 1) saw transform's header (position 2): %v", m.id, fields)
		}
		// Auth runs before transform renames the legacy header.
		if a := mustSend(t, m.addr(), "/legacy", legacy); a.status != 401 {
			t.Errorf("%s: legacy key with auth before transform: status %d, want 401", m.id, a.status)
		}
	}

	drains, streams := map[string]int{}, map[string]int{}
	for _, m := range f.members() {
		drains[m.id], streams[m.id] = m.node.Drains(), m.node.Status().Streams
	}
	// An operator edits the config file; the control plane reloads it.
	f.cfg.Filters = []config.Filter{s.filters[2], s.filters[0], s.filters[1]}
	f.writeConfig()
	reordered := []link{{"transform", transform}, {"auth", auth}, {"logging", logging}}
	f.await("every node runs transform, auth, logging", func() bool {
		for _, m := range f.members() {
			if !slices.Equal(m.chain(), reordered) {
				return false
			}
		}
		return true
	})
	for i, m := range f.members() {
		path := fmt.Sprintf("/reordered/%d", i)
		if a := mustSend(t, m.addr(), path, legacy); a.status != 200 || a.saw.ServedBy != "wasmfleet" {
			t.Errorf("%s: legacy key with transform first: status %d, served_by %q, want 200, wasmfleet", m.id, a.status, a.saw.ServedBy)
		}
		if fields, ok := logged(m.node, path); !ok || fields["req.x-transformed"] != "1" {
			t.Errorf("%s: access line %v, want one with req.x-transformed 1 (logging now after transform)", m.id, fields)
		}
		if a := mustSend(t, m.addr(), "/reordered", nil); a.status != 401 {
			t.Errorf("%s: no key: status %d, want 401", m.id, a.status)
		}
		if d := m.node.Drains(); d != drains[m.id] {
			t.Errorf("%s: reordering drained the listener %d times", m.id, d-drains[m.id])
		}
		if n := m.node.Status().Streams; n != streams[m.id] {
			t.Errorf("%s reconnected during the reload (%d streams, was %d)", m.id, n, streams[m.id])
		}
	}
	st := f.status()
	for name, want := range map[string]int{"transform": 0, "auth": 1, "logging": 2} {
		if fs, _ := filterStatus(st, name); fs.Position != want {
			t.Errorf("%s at position %d, want %d", name, fs.Position, want)
		}
	}
}

func (s *scenario) joinLeave(t *testing.T) {
	f := s.f
	ref := f.members()[0]
	late := f.addNode("node-late", nodeOptions{})
	// The late node's slots may be laid out otherwise (the others went
	// through a reorder); its routes run the same chain.
	f.await("the late node runs the fleet's versions", func() bool {
		want := ref.chain()
		return len(want) > 0 && slices.Equal(late.chain(), want)
	})
	if a := mustSend(t, late.addr(), "/late", nil); a.status != 401 {
		t.Errorf("late node: no key: status %d, want 401", a.status)
	}
	if a := mustSend(t, late.addr(), "/late", withKey.header); a.status != 200 || a.saw.ServedBy != "wasmfleet" {
		t.Errorf("late node: shared key: status %d, served_by %q", a.status, a.saw.ServedBy)
	}
	if _, ok := nodeStatus(f.status(), late.id); !ok {
		t.Errorf("%s missing from status", late.id)
	}
	f.stopNode(late)
	f.await("the node that left dropped from status", func() bool {
		_, ok := nodeStatus(f.status(), late.id)
		return !ok
	})
	st := f.status()
	for _, m := range f.members() {
		if _, ok := nodeStatus(st, m.id); !ok {
			t.Errorf("%s dropped from status too", m.id)
		}
	}
	if len(st.Nodes) != fleetSize {
		t.Errorf("status lists %d nodes, want %d", len(st.Nodes), fleetSize)
	}
}
