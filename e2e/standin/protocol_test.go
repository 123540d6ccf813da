package standin

import (
	"net/http"
	"strings"
	"testing"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

// protocols are the two ways a node can speak ADS.
var protocols = []struct {
	name  string
	delta bool
}{{name: "sotw"}, {name: "delta", delta: true}}

// nackDetails returns the error_detail messages of the ECDS NACKs that
// reached the control plane over the protocol in use.
func (e *env) nackDetails(delta bool) []string {
	var out []string
	if !delta {
		for _, r := range e.ecdsNacks() {
			out = append(out, r.GetErrorDetail().GetMessage())
		}
		return out
	}
	for _, r := range e.xds.DeltaRequests() {
		if r.GetTypeUrl() == dataplane.ExtensionType && r.GetErrorDetail() != nil && r.GetResponseNonce() != "" {
			out = append(out, r.GetErrorDetail().GetMessage())
		}
	}
	return out
}

// TestFilterLifecycleOverBothProtocols runs a filter config's life over
// state of the world and delta xDS: it arrives and runs, an update swaps
// it, a module that fails to load is NACKed and the previous filter keeps
// running. Under delta a removed config also leaves its slot: a route that
// enables it answers 500, as Envoy's MissingConfigFilter does (see filter.go); state of
// the world cannot remove a config (FACTS.md).
func TestFilterLifecycleOverBothProtocols(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			v1 := e.set(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
			n := e.startNode(t, func(c *Config) { c.Delta = p.delta })
			addr := listenerAddr(t, n)
			awaitECDS(t, n, v1)
			if got := chainOf(t, addr); got != "a" {
				t.Fatalf("chain %q, want a", got)
			}

			v2 := e.set(t, tagger(t, slot0, "b"), xdstest.Noop(t, slot1))
			awaitECDS(t, n, v2)
			if got := chainOf(t, addr); got != "b" {
				t.Errorf("chain after the update %q, want b", got)
			}

			bad := xdstest.Wasm(t, slot0, xdstest.Filter{Name: "bad", Inline: guest(t, "badconfig")})
			e.set(t, bad, xdstest.Noop(t, slot1))
			await(t, "the NACK of the bad module", func() bool { return len(e.nackDetails(p.delta)) > 0 })
			if d := e.nackDetails(p.delta)[0]; !strings.Contains(d, slot0) || !strings.Contains(d, "proxy_on_configure") {
				t.Errorf("error_detail %q, want the slot and proxy_on_configure", d)
			}
			if got := chainOf(t, addr); got != "b" {
				t.Errorf("chain after the NACK %q, want b (the previous filter)", got)
			}
			x := n.Status().Extensions[slot0]
			if x.Version != v2 || x.Digest != string(wftypes.DigestOf(guest(t, "tagger"))) || x.Code != dataplane.CodeReady {
				t.Errorf("slot status %+v, want the tagger of version %s running", x, v2)
			}
			if !p.delta {
				return
			}

			v3 := e.set(t, xdstest.Noop(t, slot1))
			awaitECDS(t, n, v3)
			if r := get(t, addr, "/"); r.status != http.StatusInternalServerError {
				t.Errorf("status %d after slot 0's config was removed, want 500 (no config)", r.status)
			}
			if _, ok := n.Status().Extensions[slot0]; ok {
				t.Errorf("slot 0 still reports a config after its removal: %+v", n.Status().Extensions[slot0])
			}
		})
	}
}
