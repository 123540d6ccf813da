package standin

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

func tagger(t testing.TB, slot, tag string) *core.TypedExtensionConfig {
	return xdstest.Wasm(t, slot, xdstest.Filter{Name: "tagger", Config: tag, Inline: guest(t, "tagger")})
}

func countLogs(n dataplane.Node, msg string) int {
	c := 0
	for _, l := range n.Logs() {
		if l.Message == msg {
			c++
		}
	}
	return c
}

func TestChainOrder(t *testing.T) {
	tests := []struct {
		name      string
		exts      func(t *testing.T) []*core.TypedExtensionConfig
		hdr       []string
		status    int
		seenChain string
		respHdrs  []string
		body      string
	}{
		{
			name: "two taggers run in slot order",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{tagger(t, slot0, "a"), tagger(t, slot1, "b")}
			},
			status: 200, seenChain: "a,b", respHdrs: []string{"X-Tagged-A", "X-Tagged-B"},
			body: "upstream\nb\na\n", // the response runs through the filters in reverse
		},
		{
			name: "reversed slots reverse the order",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{tagger(t, slot0, "b"), tagger(t, slot1, "a")}
			},
			status: 200, seenChain: "b,a", respHdrs: []string{"X-Tagged-A", "X-Tagged-B"},
			body: "upstream\na\nb\n",
		},
		{
			name: "gate denies before the tagger runs",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{
					xdstest.Wasm(t, slot0, xdstest.Filter{Name: "gate", Inline: guest(t, "gate")}),
					tagger(t, slot1, "a"),
				}
			},
			status: 403, respHdrs: []string{"X-Denied-By"}, body: "denied\n",
		},
		{
			name: "gate passes with x-pass",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{
					xdstest.Wasm(t, slot0, xdstest.Filter{Name: "gate", Inline: guest(t, "gate")}),
					tagger(t, slot1, "a"),
				}
			},
			hdr: []string{"x-pass", "1"}, status: 200, seenChain: "a", respHdrs: []string{"X-Tagged-A"},
		},
		{
			name: "a no-op slot is skipped",
			exts: func(t *testing.T) []*core.TypedExtensionConfig {
				return []*core.TypedExtensionConfig{xdstest.Noop(t, slot0), tagger(t, slot1, "b")}
			},
			status: 200, seenChain: "b", respHdrs: []string{"X-Tagged-B"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.xds.Set(t, nodeID, e.config(t, tc.exts(t)...))
			n := e.startNode(t, nil)
			r := get(t, listenerAddr(t, n), "/hello", tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body %q, want %q", r.body, tc.body)
			}
			if got := r.header.Get("x-seen-chain"); got != tc.seenChain {
				t.Errorf("upstream saw x-chain %q, want %q", got, tc.seenChain)
			}
			for _, h := range tc.respHdrs {
				if r.header.Get(h) == "" {
					t.Errorf("response lacks %s: %v", h, r.header)
				}
			}
			st := n.Status()
			for _, typ := range []string{dataplane.ClusterType, dataplane.ListenerType, dataplane.RouteType, dataplane.ExtensionType} {
				if ts := st.Types[typ]; ts.Version == "" || ts.Error != "" {
					t.Errorf("%s: %+v, want acked", typ, ts)
				}
			}
		})
	}
}

// load sends requests from several goroutines until stop is closed and
// counts the answers by status and by which tag the upstream saw.
type load struct {
	wg            sync.WaitGroup
	stop          chan struct{}
	ok, failed    atomic.Int64
	mu            sync.Mutex
	byChain       map[string]int
	firstFailures []string
}

func startLoad(addr string, workers int) *load {
	l := &load{stop: make(chan struct{}), byChain: map[string]int{}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := doGet(addr, "/")
				l.mu.Lock()
				if err != nil || r.status != 200 {
					l.failed.Add(1)
					if len(l.firstFailures) < 5 {
						l.firstFailures = append(l.firstFailures, errors.Join(err).Error()+" "+r.body)
					}
				} else {
					l.ok.Add(1)
					l.byChain[r.header.Get("x-seen-chain")]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) seen(chain string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byChain[chain]
}

func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

func TestECDSSwapUnderLoadFailsNoRequest(t *testing.T) {
	e := newEnv(t)
	e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1)))
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	l := startLoad(addr, 8)
	await(t, "traffic through a", func() bool { return l.seen("a") > 50 })
	e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "b"), xdstest.Noop(t, slot1)))
	await(t, "traffic through b", func() bool { return l.seen("b") > 50 })
	e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "a"), tagger(t, slot1, "c")))
	await(t, "traffic through a,c", func() bool { return l.seen("a,c") > 50 })
	l.end()
	if f := l.failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across the swaps: %q", f, f+l.ok.Load(), l.firstFailures)
	}
	if d := n.Drains(); d != 0 {
		t.Errorf("drains = %d, want 0: ECDS updates must not drain", d)
	}
	t.Logf("requests: %d ok; by chain %v", l.ok.Load(), l.byChain)
}

func TestRemoteCodeFailurePolicy(t *testing.T) {
	tests := []struct {
		name      string
		serve     func(e *env, d wftypes.Digest, t *testing.T)
		policy    wasmpb.FailurePolicy
		code      dataplane.CodeState
		codeError string
		status    int
		chain     string
		gets      int // requests the module server saw; 0 = not checked
	}{
		{
			name:   "fetched and verified",
			serve:  func(e *env, d wftypes.Digest, t *testing.T) { e.modules.serve(d, guest(t, "tagger")) },
			policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeReady, status: 200, chain: "r",
		},
		{
			name: "the one retry succeeds",
			serve: func(e *env, d wftypes.Digest, t *testing.T) {
				e.modules.serve(d, guest(t, "tagger"))
				e.modules.failFirst(1)
			},
			policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeReady, status: 200, chain: "r", gets: 2,
		},
		{
			name: "a second failure exhausts the one retry",
			serve: func(e *env, d wftypes.Digest, t *testing.T) {
				e.modules.serve(d, guest(t, "tagger"))
				e.modules.failFirst(2)
			},
			policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeFailed, codeError: "status 503", status: 503, gets: 2,
		},
		{
			name:   "sha256 mismatch fails closed",
			serve:  func(e *env, d wftypes.Digest, t *testing.T) { e.modules.serve(d, guest(t, "gate")) },
			policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeFailed, codeError: "sha256 mismatch", status: 503,
		},
		{
			name:   "sha256 mismatch fails open",
			serve:  func(e *env, d wftypes.Digest, t *testing.T) { e.modules.serve(d, guest(t, "gate")) },
			policy: wasmpb.FailurePolicy_FAIL_OPEN, code: dataplane.CodeFailed, codeError: "sha256 mismatch", status: 200, chain: "",
		},
		{
			name:   "module server down fails closed",
			serve:  func(e *env, _ wftypes.Digest, _ *testing.T) { e.modules.srv.Close() },
			policy: wasmpb.FailurePolicy_UNSPECIFIED, code: dataplane.CodeFailed, codeError: "fetch", status: 503,
		},
		{
			name:   "module server down fails open",
			serve:  func(e *env, _ wftypes.Digest, _ *testing.T) { e.modules.srv.Close() },
			policy: wasmpb.FailurePolicy_FAIL_OPEN, code: dataplane.CodeFailed, codeError: "fetch", status: 200, chain: "",
		},
		{
			name:   "module missing (404) fails closed",
			serve:  func(*env, wftypes.Digest, *testing.T) {},
			policy: wasmpb.FailurePolicy_FAIL_CLOSED, code: dataplane.CodeFailed, codeError: "status 404", status: 503,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			d := wftypes.DigestOf(guest(t, "tagger"))
			tc.serve(e, d, t)
			remote := xdstest.Wasm(t, slot0, xdstest.Filter{
				Name: "tagger", Config: "r", ModuleBaseURL: "http://modules.wasmfleet.test", Digest: d, Policy: tc.policy,
			})
			e.xds.Set(t, nodeID, e.config(t, remote, xdstest.Noop(t, slot1)))
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)
			await(t, "code "+string(tc.code), func() bool { return n.Status().Extensions[slot0].Code == tc.code })
			x := n.Status().Extensions[slot0]
			if !strings.Contains(x.CodeError, tc.codeError) {
				t.Errorf("code error %q, want it to mention %q", x.CodeError, tc.codeError)
			}
			if ts := n.Status().Types[dataplane.ExtensionType]; ts.Error != "" || ts.Nacks != 0 {
				t.Errorf("remote code must be ACKed before it is fetched (nack_on_code_cache_miss false): %+v", ts)
			}
			if x.Digest != string(d) {
				t.Errorf("digest %q, want %q", x.Digest, d)
			}
			if tc.gets != 0 && e.modules.requests() != tc.gets {
				t.Errorf("module server saw %d requests, want %d", e.modules.requests(), tc.gets)
			}
			r := get(t, addr, "/")
			if r.status != tc.status || r.header.Get("x-seen-chain") != tc.chain {
				t.Errorf("got %d chain %q, want %d chain %q (%s)", r.status, r.header.Get("x-seen-chain"), tc.status, tc.chain, r.body)
			}
		})
	}
}

func TestRuntimeFractionSplit(t *testing.T) {
	tests := []struct {
		name  string
		share uint32 // basis points
	}{
		{name: "10 percent", share: 1000},
		{name: "50 percent", share: 5000},
		{name: "none", share: 0},
		{name: "all", share: 10000},
	}
	const requests = 1000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			const canary = slot0 + ".canary"
			rs := e.config(t, tagger(t, slot0, "stable"), tagger(t, canary, "canary"))
			rs[xdstest.ListenerType] = []types.Resource{xdstest.Listener(t, listener, 10000, slot0, canary)}
			rs[xdstest.RouteType] = []types.Resource{xdstest.Routes(t, listener,
				xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{canary}, Share: xdstest.Share(tc.share)},
				xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0}},
			)}
			e.xds.Set(t, nodeID, rs)
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)
			got := map[string]int{}
			for range requests {
				r := get(t, addr, "/")
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				got[r.header.Get("x-seen-chain")]++
			}
			if got["canary"]+got["stable"] != requests {
				t.Fatalf("requests went elsewhere: %v", got)
			}
			// Binomial: 4 standard deviations, at least 1 request.
			want := float64(requests) * float64(tc.share) / 10000
			sd := math.Sqrt(want * (1 - float64(tc.share)/10000))
			if diff := float64(got["canary"]) - want; diff > 4*sd+1 || diff < -4*sd-1 {
				t.Errorf("canary got %d of %d, want %.0f ± %.0f", got["canary"], requests, want, 4*sd+1)
			}
			t.Logf("split %v", got)
		})
	}
}

func TestControlPlaneRestart(t *testing.T) {
	e := newEnv(t)
	e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "a"), tagger(t, slot1, "b")))
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	before := n.Status()
	loads := countLogs(n, "tagger: configured a")
	l := startLoad(addr, 4)
	await(t, "traffic", func() bool { return l.seen("a,b") > 20 })

	e.xds.Restart(t)
	await(t, "reconnect", func() bool { return n.Status().Streams > before.Streams })
	// Wait until the node has handled the new stream's responses.
	await(t, "responses on the new stream", func() bool {
		st := n.Status()
		for _, typ := range []string{dataplane.ClusterType, dataplane.ListenerType, dataplane.RouteType, dataplane.ExtensionType} {
			if st.Types[typ].Acks <= before.Types[typ].Acks {
				return false
			}
		}
		return true
	})
	seen := l.seen("a,b")
	await(t, "traffic after the restart", func() bool { return l.seen("a,b") > seen+20 })
	l.end()

	first := map[string]*xdstest.Request{}
	for _, r := range e.xds.Requests() {
		if r.Restarts == 1 && first[r.GetTypeUrl()] == nil {
			first[r.GetTypeUrl()] = &r
		}
	}
	for typ, ts := range before.Types {
		r := first[typ]
		if r == nil || r.GetVersionInfo() != ts.Version || r.GetResponseNonce() != "" {
			t.Errorf("%s: first request after the restart %v; want version %s and no nonce", typ, r, ts.Version)
			continue
		}
		if typ == dataplane.ExtensionType && strings.Join(r.GetResourceNames(), ",") != slot0+","+slot1 {
			t.Errorf("ecds names after the restart: %v", r.GetResourceNames())
		}
	}
	if r := first[dataplane.ClusterType]; r == nil || r.GetNode().GetId() != nodeID || r.GetNode().GetUserAgentName() != "envoy" ||
		r.GetNode().GetUserAgentBuildVersion().GetVersion().GetMajorNumber() != EnvoyMajor {
		t.Errorf("the first request of the new stream must carry the node: %v", r)
	}

	after := n.Status()
	for typ, ts := range before.Types {
		if after.Types[typ].Version != ts.Version || after.Types[typ].Nacks != 0 {
			t.Errorf("%s: %+v after the restart, want version %s unchanged", typ, after.Types[typ], ts.Version)
		}
	}
	if d := n.Drains(); d != 0 {
		t.Errorf("drains = %d, want 0", d)
	}
	if got := countLogs(n, "tagger: configured a"); got != loads {
		t.Errorf("filter reloaded: %d configure logs, had %d", got, loads)
	}
	if f := l.failed.Load(); f != 0 {
		t.Errorf("%d requests failed across the restart: %q", f, l.firstFailures)
	}
}

func TestInvalidResourceNACKed(t *testing.T) {
	tests := []struct {
		name   string
		typ    string
		mutate func(t *testing.T, e *env, rs xdstest.Resources)
		want   string
		// remembered: the resource passes validation and fails to build, so
		// (as in Envoy) it is NACKed once and its identical re-send ACKed.
		// Otherwise every re-send is NACKed again.
		remembered bool
	}{
		{
			name: "cluster with a negative connect timeout",
			typ:  dataplane.ClusterType,
			mutate: func(t *testing.T, e *env, rs xdstest.Resources) {
				c := xdstest.Cluster(t, upstream, strings.TrimPrefix(e.upstream.URL, "http://"))
				c.ConnectTimeout = durationpb.New(-1)
				rs[xdstest.ClusterType][0] = c
			},
			want: "ConnectTimeout",
		},
		{
			name: "listener whose connection manager has no stat_prefix",
			typ:  dataplane.ListenerType,
			mutate: func(t *testing.T, e *env, rs xdstest.Resources) {
				l := xdstest.Listener(t, listener, 10000, slot0, slot1)
				m := &hcmpb.HttpConnectionManager{}
				tc := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
				if err := tc.UnmarshalTo(m); err != nil {
					t.Fatal(err)
				}
				m.StatPrefix = ""
				l.GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerpb.Filter_TypedConfig{TypedConfig: xdstest.Any(t, m)}
				rs[xdstest.ListenerType][0] = l
			},
			want: "StatPrefix",
		},
		{
			name: "listener with a default filter config",
			typ:  dataplane.ListenerType,
			mutate: func(t *testing.T, e *env, rs xdstest.Resources) {
				l := xdstest.Listener(t, listener, 10000, slot0, slot1)
				m := &hcmpb.HttpConnectionManager{}
				tc := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
				if err := tc.UnmarshalTo(m); err != nil {
					t.Fatal(err)
				}
				m.GetHttpFilters()[0].GetConfigDiscovery().DefaultConfig = xdstest.Noop(t, slot0).GetTypedConfig()
				l.GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerpb.Filter_TypedConfig{TypedConfig: xdstest.Any(t, m)}
				rs[xdstest.ListenerType][0] = l
			},
			want: "default_config",
		},
		{
			name: "remote wasm code without a sha256",
			typ:  dataplane.ExtensionType,
			mutate: func(t *testing.T, e *env, rs xdstest.Resources) {
				rs[xdstest.ExtensionType][0] = xdstest.Wasm(t, slot0, xdstest.Filter{Name: "tagger", Config: "x", ModuleBaseURL: e.modules.url()})
			},
			want: "Sha256",
		},
		{
			name: "empty inline code",
			typ:  dataplane.ExtensionType,
			mutate: func(t *testing.T, e *env, rs xdstest.Resources) {
				rs[xdstest.ExtensionType][0] = xdstest.Wasm(t, slot0, xdstest.Filter{Name: "tagger", Config: "x", Inline: []byte{}})
			},
			want: slot0, remembered: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1)))
			n := e.startNode(t, nil)
			addr := listenerAddr(t, n)
			var good string
			await(t, "the first version accepted", func() bool {
				good = n.Status().Types[tc.typ].Version
				return good != ""
			})
			rs := e.config(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
			tc.mutate(t, e, rs)
			e.xds.Set(t, nodeID, rs)
			await(t, "nack", func() bool { return n.Status().Types[tc.typ].Nacks > 0 })
			if tc.remembered {
				sent := xdstest.Version(t, rs[tc.typ])
				await(t, "the re-send acked", func() bool { return n.Status().Types[tc.typ].Version == sent })
				if ts := n.Status().Types[tc.typ]; ts.Nacks != 1 {
					t.Errorf("%+v: want one nack", ts)
				}
			} else if ts := n.Status().Types[tc.typ]; ts.Version != good || !strings.Contains(ts.Error, tc.want) {
				t.Errorf("%+v: want version %s kept and an error naming %q", ts, good, tc.want)
			}
			var nack *xdstest.Request
			await(t, "nack on the wire", func() bool {
				for _, r := range e.xds.Requests() {
					if r.GetTypeUrl() == tc.typ && r.GetErrorDetail() != nil {
						nack = &r
						return true
					}
				}
				return false
			})
			if nack.GetVersionInfo() != good || !strings.Contains(nack.GetErrorDetail().GetMessage(), tc.want) {
				t.Errorf("nack on the wire: version %q detail %q; want version %s and an error naming %q",
					nack.GetVersionInfo(), nack.GetErrorDetail().GetMessage(), good, tc.want)
			}
			if r := get(t, addr, "/"); r.status != 200 || r.header.Get("x-seen-chain") != "a" {
				t.Errorf("traffic after the nack: %d %q", r.status, r.header.Get("x-seen-chain"))
			}
		})
	}
}

func TestListenerChangeDrains(t *testing.T) {
	e := newEnv(t)
	exts := []*core.TypedExtensionConfig{tagger(t, slot0, "a"), xdstest.Noop(t, slot1)}
	e.xds.Set(t, nodeID, e.config(t, exts...))
	n := e.startNode(t, nil)
	addr := listenerAddr(t, n)
	l := startLoad(addr, 4)
	await(t, "traffic", func() bool { return l.seen("a") > 20 })

	// Same listener content under a new route version: no drain.
	rs := e.config(t, exts...)
	rs[xdstest.RouteType] = []types.Resource{xdstest.Routes(t, listener,
		xdstest.Route{Prefix: "/other", Cluster: upstream},
		xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1}})}
	e.xds.Set(t, nodeID, rs)
	await(t, "route update", func() bool { return n.Status().Types[dataplane.RouteType].Acks > 1 })
	if d := n.Drains(); d != 0 {
		t.Fatalf("drains = %d after an RDS-only update", d)
	}

	// A third slot changes the listener: one drain, same address.
	const slot2 = "wasmfleet.slot.2"
	rs = e.config(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1), tagger(t, slot2, "z"))
	rs[xdstest.ListenerType] = []types.Resource{xdstest.Listener(t, listener, 10000, slot0, slot1, slot2)}
	rs[xdstest.RouteType] = []types.Resource{xdstest.Routes(t, listener, xdstest.Route{Prefix: "/", Cluster: upstream, Slots: []string{slot0, slot1, slot2}})}
	e.xds.Set(t, nodeID, rs)
	await(t, "traffic through the new chain", func() bool { return l.seen("a,z") > 20 })
	l.end()
	if d := n.Drains(); d != 1 {
		t.Errorf("drains = %d, want 1", d)
	}
	if got := n.Listeners()[listener]; got != addr {
		t.Errorf("listener moved from %s to %s", addr, got)
	}
	if f := l.failed.Load(); f != 0 {
		t.Errorf("%d requests failed across the drain: %q", f, l.firstFailures)
	}
}

func TestStrictDNSCluster(t *testing.T) {
	e := newEnv(t)
	rs := e.config(t, tagger(t, slot0, "a"), xdstest.Noop(t, slot1))
	_, port, err := net.SplitHostPort(strings.TrimPrefix(e.upstream.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c := xdstest.Cluster(t, upstream, net.JoinHostPort("localhost", port))
	c.ClusterDiscoveryType = &clusterpb.Cluster_Type{Type: clusterpb.Cluster_STRICT_DNS}
	rs[xdstest.ClusterType][0] = c
	e.xds.Set(t, nodeID, rs)
	n := e.startNode(t, nil)
	if r := get(t, listenerAddr(t, n), "/"); r.status != 200 || r.header.Get("x-seen-chain") != "a" {
		t.Errorf("through a STRICT_DNS cluster to localhost: %d %q (%s)", r.status, r.header.Get("x-seen-chain"), r.body)
	}
}

// TestAdminStats: the filters' metrics show at /stats/prometheus as on
// Envoy, summed over every VM of the node (two per filter here).
func TestAdminStats(t *testing.T) {
	e := newEnv(t)
	e.xds.Set(t, nodeID, e.config(t, tagger(t, slot0, "a"), tagger(t, slot1, "b")))
	n := e.startNode(t, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	addr := listenerAddr(t, n)
	for range 5 {
		if r := get(t, addr, "/hello"); r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	r := get(t, n.AdminAddr(), "/stats/prometheus")
	if r.status != http.StatusOK {
		t.Fatalf("/stats/prometheus: status %d", r.status)
	}
	text := r.body
	for _, want := range []string{
		"# TYPE tagger_a_requests counter\ntagger_a_requests{} 5\n",
		"# TYPE tagger_b_requests counter\ntagger_b_requests{} 5\n",
		// a sends "a" (1 byte), b sends "a,b" (3 bytes).
		"# TYPE tagger_a_chain_bytes histogram\ntagger_a_chain_bytes_bucket{le=\"0.5\"} 0\ntagger_a_chain_bytes_bucket{le=\"1\"} 5\n",
		"tagger_b_chain_bytes_bucket{le=\"1\"} 0\ntagger_b_chain_bytes_bucket{le=\"5\"} 5\n",
		"tagger_b_chain_bytes_bucket{le=\"+Inf\"} 5\ntagger_b_chain_bytes_sum{} 15\ntagger_b_chain_bytes_count{} 5\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/stats/prometheus lacks %q:\n%s", want, text)
		}
	}
}
