package ads

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/xdstest"
)

const deltaNode = "delta-node"

// handled is one call of the handler: the view's resources as keys (see
// key), its version and nonce, and the names removed.
type handled struct {
	version, nonce string
	resources      []string
	removed        []string
	err            error
}

// recorder is a DeltaHandler that records every call, subscribes named
// types to what the test sets and rejects a view holding a resource whose
// key reject names.
type recorder struct {
	mu     sync.Mutex
	calls  map[string][]handled
	names  map[string][]string
	reject map[string]bool
}

var _ DeltaHandler = (*recorder)(nil)

func newRecorder(ecds ...string) *recorder {
	return &recorder{calls: map[string][]handled{}, names: map[string][]string{xdstest.ExtensionType: ecds}, reject: map[string]bool{}}
}

func (r *recorder) Handle(resp *discovery.DiscoveryResponse) error { return r.HandleDelta(resp, nil) }

func (r *recorder) HandleDelta(resp *discovery.DiscoveryResponse, removed []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := handled{version: resp.GetVersionInfo(), nonce: resp.GetNonce(), removed: removed}
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return err
		}
		k := key(m)
		h.resources = append(h.resources, k)
		if r.reject[k] && h.err == nil {
			h.err = fmt.Errorf("%s is refused", k)
		}
	}
	r.calls[resp.GetTypeUrl()] = append(r.calls[resp.GetTypeUrl()], h)
	return h.err
}

func (r *recorder) Names(typeURL string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names[typeURL])
}

func (r *recorder) setNames(typeURL string, names ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[typeURL] = names
}

func (r *recorder) refuse(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reject[k] = true
}

func (r *recorder) of(typeURL string) []handled {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[typeURL])
}

// key names a resource in recorder calls: a filter config as name=content,
// anything else by its name.
func key(m any) string {
	if e, ok := m.(*core.TypedExtensionConfig); ok {
		var s wrapperspb.StringValue
		if err := e.GetTypedConfig().UnmarshalTo(&s); err == nil {
			return e.GetName() + "=" + s.GetValue()
		}
	}
	return m.(interface{ GetName() string }).GetName()
}

func ext(t *testing.T, name, content string) *core.TypedExtensionConfig {
	return &core.TypedExtensionConfig{Name: name, TypedConfig: xdstest.Any(t, wrapperspb.String(content))}
}

func lis(name string) *listenerpb.Listener { return &listenerpb.Listener{Name: name} }

func cls(name string) *clusterpb.Cluster { return &clusterpb.Cluster{Name: name} }

// resourceVersion is the version go-control-plane's snapshot cache gives r
// in delta responses.
func resourceVersion(t *testing.T, r types.Resource) string {
	t.Helper()
	b, err := cache.MarshalResource(r)
	if err != nil {
		t.Fatal(err)
	}
	return cache.HashResource(b)
}

func versionsOf(t *testing.T, rs ...types.Resource) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[cache.GetResourceName(r)] = resourceVersion(t, r)
	}
	return out
}

// startDelta runs a delta client for deltaNode against srv until the test
// ends: clusters and listeners wildcard, ECDS named.
func startDelta(t *testing.T, srv *xdstest.Server, h Handler) {
	t.Helper()
	c, err := New(Config{
		Node: &core.Node{Id: deltaNode}, Addr: srv.Addr, Delta: true,
		Wildcard: []string{xdstest.ClusterType, xdstest.ListenerType},
		Named:    []string{xdstest.ExtensionType},
		Handler:  h, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCall waits until typeURL's handler calls number more than n and
// returns the last one.
func waitCall(t *testing.T, r *recorder, typeURL string, n int) handled {
	t.Helper()
	waitFor(t, fmt.Sprintf("call %d of %s", n+1, typeURL), func() bool { return len(r.of(typeURL)) > n })
	calls := r.of(typeURL)
	return calls[len(calls)-1]
}

// firstRequests returns, per type, the first delta request of the server
// run restarts.
func firstRequests(srv *xdstest.Server, restarts int) map[string]*discovery.DeltaDiscoveryRequest {
	out := map[string]*discovery.DeltaDiscoveryRequest{}
	for _, r := range srv.DeltaRequests() {
		if r.Restarts == restarts && out[r.GetTypeUrl()] == nil {
			out[r.GetTypeUrl()] = r.DeltaDiscoveryRequest
		}
	}
	return out
}

// answer returns the request that answered the response with nonce.
func answer(t *testing.T, srv *xdstest.Server, typeURL, nonce string) *discovery.DeltaDiscoveryRequest {
	t.Helper()
	var out *discovery.DeltaDiscoveryRequest
	waitFor(t, "the answer to "+typeURL+" nonce "+nonce, func() bool {
		for _, r := range srv.DeltaRequests() {
			if r.GetTypeUrl() == typeURL && r.GetResponseNonce() == nonce {
				out = r.DeltaDiscoveryRequest
				return true
			}
		}
		return false
	})
	return out
}

func set(t *testing.T, srv *xdstest.Server, clusters, listeners, exts []types.Resource) {
	t.Helper()
	srv.Set(t, deltaNode, xdstest.Resources{
		xdstest.ClusterType: clusters, xdstest.ListenerType: listeners, xdstest.ExtensionType: exts,
	})
}

func TestDeltaSubscribesWildcardAndNamedTypes(t *testing.T) {
	srv := xdstest.Start(t)
	exts := []types.Resource{ext(t, "a", "1"), ext(t, "b", "1"), ext(t, "x", "1")}
	set(t, srv, []types.Resource{cls("c1")}, []types.Resource{lis("l1"), lis("l2")}, exts)
	h := newRecorder("b", "a")
	startDelta(t, srv, h)

	got := waitCall(t, h, xdstest.ExtensionType, 0)
	slices.Sort(got.resources)
	if want := []string{"a=1", "b=1"}; !slices.Equal(got.resources, want) {
		t.Errorf("ECDS view = %v, want %v (x is not subscribed)", got.resources, want)
	}
	if want := xdstest.Version(t, exts); got.version != want {
		t.Errorf("ECDS version = %q, want the snapshot's (system_version_info) %q", got.version, want)
	}
	l := waitCall(t, h, xdstest.ListenerType, 0)
	if want := []string{"l1", "l2"}; !slices.Equal(slices.Sorted(slices.Values(l.resources)), want) {
		t.Errorf("LDS view = %v, want %v", l.resources, want)
	}
	waitCall(t, h, xdstest.ClusterType, 0)
	for _, ack := range []struct{ typ, nonce string }{{xdstest.ExtensionType, got.nonce}, {xdstest.ListenerType, l.nonce}} {
		if req := answer(t, srv, ack.typ, ack.nonce); req.GetErrorDetail() != nil {
			t.Errorf("%s: NACK %v, want an ACK", ack.typ, req.GetErrorDetail())
		}
	}

	first := firstRequests(srv, 0)
	for _, typ := range []string{xdstest.ClusterType, xdstest.ListenerType} {
		if r := first[typ]; len(r.GetResourceNamesSubscribe()) != 0 || len(r.GetInitialResourceVersions()) != 0 {
			t.Errorf("first %s request subscribes %v with versions %v, want a legacy wildcard request (no names)", typ, r.GetResourceNamesSubscribe(), r.GetInitialResourceVersions())
		}
	}
	if r := first[xdstest.ExtensionType]; !slices.Equal(r.GetResourceNamesSubscribe(), []string{"a", "b"}) {
		t.Errorf("first ECDS request subscribes %v, want [a b]", r.GetResourceNamesSubscribe())
	}
	for _, r := range srv.DeltaRequests() {
		if r.GetNode().GetId() != deltaNode {
			t.Errorf("%s request without the node: Envoy's delta mux sends it on every request", r.GetTypeUrl())
		}
	}
}

func TestDeltaUpdateSendsOnlyTheChangedResource(t *testing.T) {
	srv := xdstest.Start(t)
	clusters, listeners := []types.Resource{cls("c1")}, []types.Resource{lis("l1")}
	set(t, srv, clusters, listeners, []types.Resource{ext(t, "a", "1"), ext(t, "b", "1")})
	h := newRecorder("a", "b")
	startDelta(t, srv, h)
	waitCall(t, h, xdstest.ExtensionType, 0)
	waitCall(t, h, xdstest.ListenerType, 0)
	lds := len(h.of(xdstest.ListenerType))

	exts := []types.Resource{ext(t, "a", "1"), ext(t, "b", "2")}
	set(t, srv, clusters, listeners, exts)
	got := waitCall(t, h, xdstest.ExtensionType, 1)
	if !slices.Equal(got.resources, []string{"b=2"}) || len(got.removed) != 0 {
		t.Errorf("ECDS view after changing b = %v (removed %v), want only b=2", got.resources, got.removed)
	}
	if want := xdstest.Version(t, exts); got.version != want {
		t.Errorf("version = %q, want %q", got.version, want)
	}
	if n := len(h.of(xdstest.ListenerType)); n != lds {
		t.Errorf("LDS handled %d times after an ECDS-only change, want %d", n, lds)
	}
}

func TestDeltaRemovals(t *testing.T) {
	srv := xdstest.Start(t)
	clusters := []types.Resource{cls("c1")}
	set(t, srv, clusters, []types.Resource{lis("l1"), lis("l2")}, []types.Resource{ext(t, "a", "1"), ext(t, "b", "1")})
	h := newRecorder("a", "b")
	startDelta(t, srv, h)
	waitCall(t, h, xdstest.ExtensionType, 0)
	waitCall(t, h, xdstest.ListenerType, 0)

	listeners, exts := []types.Resource{lis("l1")}, []types.Resource{ext(t, "a", "1")}
	set(t, srv, clusters, listeners, exts)
	l := waitCall(t, h, xdstest.ListenerType, 1)
	if !slices.Equal(l.resources, []string{"l1"}) || !slices.Equal(l.removed, []string{"l2"}) {
		t.Errorf("LDS view %v, removed %v; want [l1], removed [l2]: a wildcard view holds what is left", l.resources, l.removed)
	}
	e := waitCall(t, h, xdstest.ExtensionType, 1)
	if len(e.resources) != 0 || !slices.Equal(e.removed, []string{"b"}) {
		t.Errorf("ECDS view %v, removed %v; want none, removed [b]", e.resources, e.removed)
	}

	// b stays subscribed but has no version: a new stream asks for it
	// without claiming it.
	answer(t, srv, xdstest.ExtensionType, e.nonce)
	srv.Restart(t)
	waitFor(t, "the ECDS request after the restart", func() bool { return firstRequests(srv, 1)[xdstest.ExtensionType] != nil })
	r := firstRequests(srv, 1)[xdstest.ExtensionType]
	if !slices.Equal(r.GetResourceNamesSubscribe(), []string{"a", "b"}) || !maps.Equal(r.GetInitialResourceVersions(), versionsOf(t, exts...)) {
		t.Errorf("ECDS after restart subscribes %v with versions %v, want [a b] with only a's", r.GetResourceNamesSubscribe(), r.GetInitialResourceVersions())
	}
}

func TestDeltaNACKKeepsStateAndSendsErrorDetail(t *testing.T) {
	srv := xdstest.Start(t)
	clusters := []types.Resource{cls("c1")}
	good := []types.Resource{ext(t, "a", "1"), ext(t, "b", "1")}
	set(t, srv, clusters, []types.Resource{lis("l1")}, good)
	h := newRecorder("a", "b")
	h.refuse("b=bad")
	h.refuse("l2")
	startDelta(t, srv, h)
	waitCall(t, h, xdstest.ExtensionType, 0)
	waitCall(t, h, xdstest.ListenerType, 0)

	set(t, srv, clusters, []types.Resource{lis("l1"), lis("l2")}, []types.Resource{ext(t, "a", "1"), ext(t, "b", "bad")})
	e := waitCall(t, h, xdstest.ExtensionType, 1)
	nack := answer(t, srv, xdstest.ExtensionType, e.nonce)
	if d := nack.GetErrorDetail(); d == nil || d.GetCode() != int32(codes.Internal) || !strings.Contains(d.GetMessage(), "b=bad is refused") {
		t.Errorf("answer to the bad ECDS response has error_detail %v, want code Internal with the handler's reason", d)
	}
	l := waitCall(t, h, xdstest.ListenerType, 1)
	if l.err == nil {
		t.Fatalf("LDS view %v was accepted", l.resources)
	}
	answer(t, srv, xdstest.ListenerType, l.nonce)

	// The rejected listener is not held: the next view lacks it.
	listeners := []types.Resource{lis("l1"), lis("l2"), lis("l3")}
	set(t, srv, clusters, listeners, []types.Resource{ext(t, "a", "1"), ext(t, "b", "bad")})
	l = waitCall(t, h, xdstest.ListenerType, 2)
	if !slices.Equal(l.resources, []string{"l1", "l3"}) {
		t.Errorf("LDS view after a rejected l2 = %v, want [l1 l3]", l.resources)
	}
	answer(t, srv, xdstest.ListenerType, l.nonce)

	// A new stream reports the versions from before the NACKs.
	srv.Restart(t)
	waitFor(t, "the requests after the restart", func() bool { return len(firstRequests(srv, 1)) == 3 })
	first := firstRequests(srv, 1)
	if got, want := first[xdstest.ExtensionType].GetInitialResourceVersions(), versionsOf(t, good...); !maps.Equal(got, want) {
		t.Errorf("ECDS initial_resource_versions after a NACK = %v, want the accepted ones %v", got, want)
	}
	if got, want := first[xdstest.ListenerType].GetInitialResourceVersions(), versionsOf(t, lis("l1"), lis("l3")); !maps.Equal(got, want) {
		t.Errorf("LDS initial_resource_versions = %v, want %v (l2 was rejected)", got, want)
	}
}

func TestDeltaReconnectSendsInitialResourceVersions(t *testing.T) {
	srv := xdstest.Start(t)
	clusters, listeners := []types.Resource{cls("c1"), cls("c2")}, []types.Resource{lis("l1")}
	exts := []types.Resource{ext(t, "a", "1"), ext(t, "b", "1")}
	set(t, srv, clusters, listeners, exts)
	h := newRecorder("a", "b")
	startDelta(t, srv, h)
	for _, typ := range []string{xdstest.ClusterType, xdstest.ListenerType, xdstest.ExtensionType} {
		answer(t, srv, typ, waitCall(t, h, typ, 0).nonce)
	}

	srv.Restart(t)
	waitFor(t, "the requests after the restart", func() bool { return len(firstRequests(srv, 1)) == 3 })
	first := firstRequests(srv, 1)
	tests := []struct {
		name, typ string
		names     []string
		versions  map[string]string
	}{
		{name: "clusters", typ: xdstest.ClusterType, versions: versionsOf(t, clusters...)},
		{name: "listeners", typ: xdstest.ListenerType, versions: versionsOf(t, listeners...)},
		{name: "extensions", typ: xdstest.ExtensionType, names: []string{"a", "b"}, versions: versionsOf(t, exts...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := first[tc.typ]
			if !slices.Equal(r.GetResourceNamesSubscribe(), tc.names) {
				t.Errorf("subscribes %v, want %v", r.GetResourceNamesSubscribe(), tc.names)
			}
			if !maps.Equal(r.GetInitialResourceVersions(), tc.versions) {
				t.Errorf("initial_resource_versions = %v, want %v", r.GetInitialResourceVersions(), tc.versions)
			}
			if r.GetNode().GetId() != deltaNode {
				t.Error("the first request on the new stream has no node")
			}
		})
	}

	// The server knows what the node holds: a change sends only itself.
	set(t, srv, clusters, listeners, []types.Resource{ext(t, "a", "2"), ext(t, "b", "1")})
	if got := waitCall(t, h, xdstest.ExtensionType, 1); !slices.Equal(got.resources, []string{"a=2"}) {
		t.Errorf("ECDS view after reconnecting and changing a = %v, want [a=2]", got.resources)
	}
}

func TestDeltaSubscriptionChanges(t *testing.T) {
	srv := xdstest.Start(t)
	clusters := []types.Resource{cls("c1")}
	exts := []types.Resource{ext(t, "a", "1"), ext(t, "b", "1"), ext(t, "c", "1")}
	set(t, srv, clusters, []types.Resource{lis("l1")}, exts)
	h := newRecorder("a", "b")
	startDelta(t, srv, h)
	waitCall(t, h, xdstest.ExtensionType, 0)

	// Names are asked again after each response: a listener change makes
	// the node want c instead of a.
	h.setNames(xdstest.ExtensionType, "b", "c")
	set(t, srv, clusters, []types.Resource{lis("l2")}, exts)
	if got := waitCall(t, h, xdstest.ExtensionType, 1); !slices.Equal(got.resources, []string{"c=1"}) {
		t.Errorf("ECDS view after subscribing to c = %v, want [c=1]", got.resources)
	}
	var change *discovery.DeltaDiscoveryRequest
	for _, r := range srv.DeltaRequests() {
		if r.GetTypeUrl() == xdstest.ExtensionType && len(r.GetResourceNamesUnsubscribe()) > 0 {
			change = r.DeltaDiscoveryRequest
		}
	}
	if !slices.Equal(change.GetResourceNamesSubscribe(), []string{"c"}) || !slices.Equal(change.GetResourceNamesUnsubscribe(), []string{"a"}) {
		t.Errorf("subscription change subscribes %v and unsubscribes %v, want [c] and [a]", change.GetResourceNamesSubscribe(), change.GetResourceNamesUnsubscribe())
	}
}

// TestDeltaRefusesMalformedResponses checks the protocol checks the client
// makes before its handler sees anything.
func TestDeltaRefusesMalformedResponses(t *testing.T) {
	a := xdstest.Any(t, ext(t, "a", "1"))
	tests := []struct {
		name string
		resp *discovery.DeltaDiscoveryResponse
		want string
	}{
		{name: "duplicate", want: "duplicate resource a", resp: &discovery.DeltaDiscoveryResponse{
			Resources: []*discovery.Resource{{Name: "a", Version: "1", Resource: a}, {Name: "a", Version: "2", Resource: a}}}},
		{name: "added and removed", want: "duplicate resource a", resp: &discovery.DeltaDiscoveryResponse{
			Resources: []*discovery.Resource{{Name: "a", Version: "1", Resource: a}}, RemovedResources: []string{"a"}}},
		{name: "wrong type", want: "type", resp: &discovery.DeltaDiscoveryResponse{
			Resources: []*discovery.Resource{{Name: "l", Version: "1", Resource: xdstest.Any(t, lis("l"))}}}},
		{name: "no body", want: "no resource", resp: &discovery.DeltaDiscoveryResponse{
			Resources: []*discovery.Resource{{Name: "a", Version: "1"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dt := newDeltaType(false)
			dt.request(xdstest.ExtensionType, []string{"a"})
			tc.resp.TypeUrl = xdstest.ExtensionType
			h := newRecorder("a")
			err := dt.apply(tc.resp, h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("apply = %v, want an error containing %q", err, tc.want)
			}
			if len(h.of(xdstest.ExtensionType)) != 0 || len(dt.versions) != 0 {
				t.Error("a refused response reached the handler or changed the versions")
			}
		})
	}
	t.Run("not subscribed", func(t *testing.T) {
		dt := newDeltaType(false)
		dt.request(xdstest.ExtensionType, []string{"a"})
		h := newRecorder("a")
		x := xdstest.Any(t, ext(t, "x", "1"))
		err := dt.apply(&discovery.DeltaDiscoveryResponse{TypeUrl: xdstest.ExtensionType, Resources: []*discovery.Resource{{Name: "x", Version: "1", Resource: x}}}, h)
		if calls := h.of(xdstest.ExtensionType); err != nil || len(calls) != 1 || len(calls[0].resources) != 0 || len(dt.versions) != 0 {
			t.Errorf("a resource never asked for: err %v, calls %v, versions %v; want it accepted, handed to no one, not held", err, calls, dt.versions)
		}
	})
	t.Run("heartbeat", func(t *testing.T) {
		dt := newDeltaType(false)
		dt.request(xdstest.ExtensionType, []string{"a"})
		dt.versions["a"] = "1"
		h := newRecorder("a")
		err := dt.apply(&discovery.DeltaDiscoveryResponse{TypeUrl: xdstest.ExtensionType, Resources: []*discovery.Resource{{Name: "a", Version: "1"}}}, h)
		if calls := h.of(xdstest.ExtensionType); err != nil || len(calls) != 1 || len(calls[0].resources) != 0 {
			t.Errorf("heartbeat: err %v, calls %v; want it accepted with no resource handed on", err, calls)
		}
	})
}
