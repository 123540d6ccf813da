package standin

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// set serves the standard configuration with exts and returns its ECDS
// version.
func (e *env) set(t *testing.T, exts ...*core.TypedExtensionConfig) string {
	t.Helper()
	rs := e.config(t, exts...)
	e.xds.Set(t, nodeID, rs)
	return xdstest.Version(t, rs[xdstest.ExtensionType])
}

// awaitECDS waits until the node has ACKed ECDS version v.
func awaitECDS(t *testing.T, n dataplane.Node, v string) {
	t.Helper()
	await(t, "ecds version "+v+" acked", func() bool { return n.Status().Types[dataplane.ExtensionType].Version == v })
}

// ecdsNacks returns the ECDS requests that reached the control plane with
// an error_detail.
func (e *env) ecdsNacks() []xdstest.Request {
	var out []xdstest.Request
	for _, r := range e.xds.Requests() {
		if r.GetTypeUrl() == dataplane.ExtensionType && r.GetErrorDetail() != nil {
			out = append(out, r)
		}
	}
	return out
}

// cached reports whether n's code cache holds d. The cache is not part of
// dataplane.Status (Envoy does not report it either), so tests look inside.
func cached(n dataplane.Node, d wftypes.Digest) bool {
	nd := n.(*node)
	nd.mu.RLock()
	defer nd.mu.RUnlock()
	_, ok := nd.codeCache[string(d)]
	return ok
}

func chainOf(t *testing.T, addr string) string {
	t.Helper()
	r := get(t, addr, "/")
	if r.status != 200 {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	return r.header.Get("x-seen-chain")
}

// TestConfigureFailureNACKedOnceThenRemembered follows Envoy's
// FilterConfigSubscription::onConfigUpdate: a config whose filter fails to
// build is NACKed once; go-control-plane re-sends it after the NACK, and
// that identical config is ACKed without being built, while the previous
// filter keeps running. A config that differs from the rejected one is
// built again, even if it is the one running.
func TestConfigureFailureNACKedOnceThenRemembered(t *testing.T) {
	e := newEnv(t)
	good := e.set(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	awaitECDS(t, n, good)
	goodDigest := string(wftypes.DigestOf(guest(t, "tagger")))
	const refused, configuredA = "badconfig: refusing configuration", "tagger: configured a"
	loadsA := countLogs(n, configuredA)

	bad := xdstest.Wasm(t, slot0, xdstest.Filter{Name: "bad", Inline: guest(t, "badconfig")})
	badVersion := e.set(t, bad, xdstest.Noop(t, slot1))
	awaitECDS(t, n, badVersion)

	ts := n.Status().Types[dataplane.ExtensionType]
	if ts.Nacks != 1 || ts.Error != "" || ts.Rejected != "" {
		t.Errorf("type status %+v: want one nack, then the re-send acked", ts)
	}
	nacks := e.ecdsNacks()
	switch {
	case len(nacks) != 1:
		t.Errorf("%d nacks reached the control plane, want 1", len(nacks))
	case nacks[0].GetVersionInfo() != good || nacks[0].GetResponseNonce() == "" ||
		!strings.Contains(nacks[0].GetErrorDetail().GetMessage(), "proxy_on_configure") ||
		!strings.Contains(nacks[0].GetErrorDetail().GetMessage(), slot0):
		t.Errorf("nack on the wire: version %q nonce %q detail %q; want version %s, a nonce, the slot and proxy_on_configure",
			nacks[0].GetVersionInfo(), nacks[0].GetResponseNonce(), nacks[0].GetErrorDetail().GetMessage(), good)
	}
	if got := countLogs(n, refused); got != 1 {
		t.Errorf("the bad module was configured %d times, want once: the re-send must not be built", got)
	}
	x := n.Status().Extensions[slot0]
	if x.Version != good || x.Digest != goodDigest || x.Code != dataplane.CodeReady || x.Error != "" {
		t.Errorf("slot status %+v: want version %s (the filter it runs), ready, no error", x, good)
	}
	if got := chainOf(t, addr); got != "a" {
		t.Errorf("after the re-send: chain %q, want a (the previous filter)", got)
	}

	// Another slot changes, so the ECDS version changes; slot 0 is sent the
	// rejected config again. The version is not part of what Envoy compares.
	mixed := e.set(t, bad, tagger(t, slot1, "b"))
	awaitECDS(t, n, mixed)
	if got := chainOf(t, addr); got != "a,b" {
		t.Errorf("chain %q, want a,b: slot 1 updated, slot 0 still on a", got)
	}
	if got := countLogs(n, refused); got != 1 || n.Status().Types[dataplane.ExtensionType].Nacks != 1 {
		t.Errorf("the rejected config was built again (%d refusals, status %+v)", got, n.Status().Types[dataplane.ExtensionType])
	}

	// The running config differs from the last one received: it is built.
	again := e.set(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
	awaitECDS(t, n, again)
	if got := countLogs(n, configuredA); got <= loadsA {
		t.Errorf("a re-sent after the rejected config was not built again (%d configure logs, had %d)", got, loadsA)
	}
	if got := chainOf(t, addr); got != "a" {
		t.Errorf("chain %q, want a", got)
	}

	next := e.set(t, tagger(t, slot0, "c"), xdstest.Noop(t, slot1))
	awaitECDS(t, n, next)
	if got := chainOf(t, addr); got != "c" {
		t.Errorf("chain %q, want c", got)
	}
	if ts := n.Status().Types[dataplane.ExtensionType]; ts.Nacks != 1 {
		t.Errorf("type status %+v: want the one nack only", ts)
	}
	if d := n.Drains(); d != 0 {
		t.Errorf("drains = %d, want 0", d)
	}
}

// TestRemoteCodeWarmsListener: remote code in the first config of a slot
// holds the listener in warming until the fetch ends (Envoy adds the fetch
// to the warming listener's init manager).
func TestRemoteCodeWarmsListener(t *testing.T) {
	e := newEnv(t)
	code := guest(t, "tagger")
	d := wftypes.DigestOf(code)
	e.modules.serve(d, code)
	release := e.modules.hold()
	e.set(t, xdstest.Wasm(t, slot0, xdstest.Filter{
		Name: "tagger", Config: "r", ModuleBaseURL: e.modules.url(), Digest: d, Policy: wasmpb.FailurePolicy_FAIL_CLOSED,
	}), xdstest.Noop(t, slot1))
	n := e.startNode(t, nil)
	await(t, "listener, routes and ecds acked", func() bool {
		st := n.Status()
		for _, typ := range []string{dataplane.ListenerType, dataplane.RouteType, dataplane.ExtensionType} {
			if st.Types[typ].Version == "" {
				return false
			}
		}
		return true
	})
	if got := n.Listeners(); len(got) != 0 {
		t.Errorf("listeners %v serve while the code is fetched, want none (warming)", got)
	}
	if x := n.Status().Extensions[slot0]; x.Code != dataplane.CodePending {
		t.Errorf("slot status %+v, want pending", x)
	}
	release()
	if got := chainOf(t, listenerAddr(t, n)); got != "r" {
		t.Errorf("chain %q, want r", got)
	}
	if g := e.modules.requests(); g != 1 {
		t.Errorf("module server saw %d requests, want 1", g)
	}
}

// TestRemoteCodeReplacement: a config with remote code replacing one that a
// serving listener runs is ACKed. Cached code is loaded; uncached code is
// never fetched, and the filter is skipped whatever failure_policy says
// (Envoy's init manager of a serving listener never starts the fetch, and
// PluginConfig::createContext without a plugin lets the request through).
func TestRemoteCodeReplacement(t *testing.T) {
	tests := []struct {
		name   string
		cached bool // slot 1 runs the same module from remote code already
		policy wasmpb.FailurePolicy
		code   dataplane.CodeState
		chain  string
		gets   int
	}{
		{name: "uncached, fail closed: skipped", policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeNotFetched},
		{name: "uncached, fail open: skipped", policy: wasmpb.FailurePolicy_FAIL_OPEN, code: dataplane.CodeNotFetched},
		{name: "uncached, fail reload: skipped", policy: wasmpb.FailurePolicy_FAIL_RELOAD, code: dataplane.CodeNotFetched},
		{name: "cached: loaded", cached: true, policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeReady, chain: "r,c", gets: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			code := guest(t, "tagger")
			d := wftypes.DigestOf(code)
			e.modules.serve(d, code)
			remote := func(slot, tag string) *core.TypedExtensionConfig {
				return xdstest.Wasm(t, slot, xdstest.Filter{Name: "tagger", Config: tag, ModuleBaseURL: e.modules.url(), Digest: d, Policy: tc.policy})
			}
			second := xdstest.Noop(t, slot1)
			if tc.cached {
				second = remote(slot1, "c")
			}
			e.set(t, tagger(t, slot0, "a"), second)
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)
			before := e.modules.requests()

			v := e.set(t, remote(slot0, "r"), second)
			awaitECDS(t, n, v)
			st := n.Status()
			if ts := st.Types[dataplane.ExtensionType]; ts.Nacks != 0 {
				t.Errorf("type status %+v: want the replacement acked", ts)
			}
			x := st.Extensions[slot0]
			if x.Code != tc.code || x.Digest != string(d) || x.Version != v {
				t.Errorf("slot status %+v: want code %q, digest %s, version %s", x, tc.code, d, v)
			}
			if tc.code == dataplane.CodeNotFetched && !strings.Contains(x.CodeError, "not fetched") {
				t.Errorf("code error %q should say the code was not fetched", x.CodeError)
			}
			if got := chainOf(t, addr); got != tc.chain {
				t.Errorf("chain %q, want %q", got, tc.chain)
			}
			if g := e.modules.requests() - before; g != 0 {
				t.Errorf("module server saw %d requests after the replacement, want none", g)
			}
			if g := e.modules.requests(); g != tc.gets {
				t.Errorf("module server saw %d requests in all, want %d", g, tc.gets)
			}
		})
	}
}

// TestNackOnCodeCacheMiss: with nack_on_code_cache_miss a miss is NACKed
// and the code is fetched in the background into the cache. The re-send
// that follows the NACK is identical to the rejected config, so it is ACKed
// without a build and the previous filter keeps running; only a different
// config finds the code in the cache and loads it.
func TestNackOnCodeCacheMiss(t *testing.T) {
	e := newEnv(t)
	first := e.set(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	awaitECDS(t, n, first)
	code := guest(t, "tagger")
	d := wftypes.DigestOf(code)
	e.modules.serve(d, code)
	release := e.modules.hold()
	remote := func(tag string) *core.TypedExtensionConfig {
		return xdstest.Wasm(t, slot0, xdstest.Filter{Name: "tagger", Config: tag, ModuleBaseURL: e.modules.url(), Digest: d, NackOnMiss: true})
	}

	missed := e.set(t, remote("r"), xdstest.Noop(t, slot1))
	awaitECDS(t, n, missed)
	if nacks := e.ecdsNacks(); len(nacks) != 1 || !strings.Contains(nacks[0].GetErrorDetail().GetMessage(), ErrCodeCacheMiss.Error()) {
		t.Errorf("nacks on the wire %v, want one for the cache miss", nacks)
	}
	if ts := n.Status().Types[dataplane.ExtensionType]; ts.Nacks != 1 {
		t.Errorf("type status %+v: want one nack, then the re-send acked", ts)
	}
	if x := n.Status().Extensions[slot0]; x.Version != first || x.Code != dataplane.CodeReady {
		t.Errorf("slot status %+v: want the first config (version %s) running", x, first)
	}
	if got := chainOf(t, addr); got != "a" {
		t.Errorf("after the acked re-send: chain %q, want a (the previous filter)", got)
	}
	if cached(n, d) {
		t.Fatal("code cached while its fetch is held")
	}

	release()
	await(t, "the background fetch fills the cache", func() bool { return cached(n, d) })
	if g := e.modules.requests(); g != 1 {
		t.Errorf("module server saw %d requests, want 1 (the re-send is not built, so it fetches nothing)", g)
	}
	hit := e.set(t, remote("r2"), xdstest.Noop(t, slot1))
	awaitECDS(t, n, hit)
	if x := n.Status().Extensions[slot0]; x.Version != hit || x.Code != dataplane.CodeReady {
		t.Errorf("slot status %+v: want version %s loaded from the cache", x, hit)
	}
	if got := chainOf(t, addr); got != "r2" {
		t.Errorf("chain %q, want r2", got)
	}
	if ts := n.Status().Types[dataplane.ExtensionType]; ts.Nacks != 1 {
		t.Errorf("type status %+v: the cache hit must be acked", ts)
	}
}
