package xdscache

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// deltaClient is one node's delta ADS stream.
type deltaClient struct {
	t    *testing.T
	node *core.Node
	s    grpc.BidiStreamingClient[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]
	stop context.CancelFunc
}

func (h *harness) delta(t *testing.T, node string) *deltaClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := discovery.NewAggregatedDiscoveryServiceClient(h.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return &deltaClient{t: t, node: &core.Node{Id: node}, s: s, stop: cancel}
}

func (c *deltaClient) send(req *discovery.DeltaDiscoveryRequest) {
	c.t.Helper()
	req.Node = c.node
	if err := c.s.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// ack answers r, with a NACK when nack is set.
func (c *deltaClient) ack(r *discovery.DeltaDiscoveryResponse, nack string) {
	c.t.Helper()
	req := &discovery.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nack}
	}
	c.send(req)
}

// recv returns the next response, or nil if none comes within wait.
func (c *deltaClient) recv(wait time.Duration) *discovery.DeltaDiscoveryResponse {
	c.t.Helper()
	r, _ := recvWithin(c.t, c.s.Recv, c.stop, wait)
	return r
}

// must is recv that fails the test without a response.
func (c *deltaClient) must() *discovery.DeltaDiscoveryResponse {
	c.t.Helper()
	r := c.recv(testWait)
	if r == nil {
		c.t.Fatal("no response")
	}
	return r
}

// versions are a delta response's resource versions by name.
func versions(r *discovery.DeltaDiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, res := range r.GetResources() {
		out[res.GetName()] = res.GetVersion()
	}
	return out
}

// hashOf is go-control-plane's delta version of a resource.
func hashOf(t *testing.T, r types.Resource) string {
	t.Helper()
	b, err := cache.MarshalResource(r)
	if err != nil {
		t.Fatal(err)
	}
	return cache.HashResource(b)
}

// TestDeltaProtocol: delta xDS over a real ADS stream as go-control-plane's
// snapshot cache serves it: resource versions (its hashes, or the
// snapshot's version map), only changed resources, removals, nonces, the
// first wildcard answer even when empty, and initial_resource_versions
// (a reconnect's first request is answered, also with nothing); and, ours,
// a NACKed response sent again.
func TestDeltaProtocol(t *testing.T) {
	h := start(t, Config{ADS: true})
	ctx := context.Background()
	c := h.delta(t, "n1")

	// A wildcard subscription is answered once there is a snapshot.
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds})
	s1 := snap(t, "v1", "1", false)
	if err := h.cache.SetSnapshot(ctx, "n1", s1); err != nil {
		t.Fatal(err)
	}
	r := c.must()
	want := map[string]string{}
	for name, res := range s1.GetResources(ecds) {
		want[name] = hashOf(t, res)
	}
	if got := versions(r); !maps.Equal(got, want) || r.GetSystemVersionInfo() != "v1" || r.GetNonce() == "" {
		t.Fatalf("first response: versions %v, system version %q, nonce %q; want %v, v1 and a nonce", got, r.GetSystemVersionInfo(), r.GetNonce(), want)
	}
	c.ack(r, "")

	// Only the resource that changed is sent.
	s2 := snap(t, "v2", "1", false)
	s2.Resources[types.ExtensionConfig].Items[slotA] = types.ResourceWithTTL{Resource: extension(t, slotA, []byte("changed"))}
	if err := h.cache.SetSnapshot(ctx, "n1", s2); err != nil {
		t.Fatal(err)
	}
	r = c.must()
	if got := slices.Collect(maps.Keys(versions(r))); !slices.Equal(got, []string{slotA}) || r.GetSystemVersionInfo() != "v2" {
		t.Fatalf("after one change: resources %v at %q, want [%s] at v2", got, r.GetSystemVersionInfo(), slotA)
	}
	c.ack(r, "")

	// A resource that leaves the snapshot is removed.
	s3, err := cache.NewSnapshot("v3", map[resource.Type][]types.Resource{ecds: {extension(t, slotA, []byte("changed"))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cache.SetSnapshot(ctx, "n1", s3); err != nil {
		t.Fatal(err)
	}
	r = c.must()
	if len(r.GetResources()) != 0 || !slices.Equal(r.GetRemovedResources(), []string{slotB}) {
		t.Fatalf("after a removal: %d resources, removed %v; want none and [%s]", len(r.GetResources()), r.GetRemovedResources(), slotB)
	}
	c.ack(r, "")
	// A NACK is answered with what it rejected, again: the node kept
	// none of it (see TestDeltaNACKResends).
	s4 := snap(t, "v4", "4", false)
	if err := h.cache.SetSnapshot(ctx, "n1", s4); err != nil {
		t.Fatal(err)
	}
	r = c.must()
	c.ack(r, "bad config")
	resent := c.must()
	if !maps.Equal(versions(resent), versions(r)) {
		t.Fatalf("a NACK of %v was answered with %v", versions(r), versions(resent))
	}
	c.ack(resent, "")
	if again := c.recv(100 * time.Millisecond); again != nil {
		t.Fatalf("an ACK was answered with %v", versions(again))
	}

	// A new stream that reports what it has gets only what differs.
	has := map[string]string{slotA: hashOf(t, s4.GetResources(ecds)[slotA]), slotB: "old"}
	d := h.delta(t, "n1")
	d.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}, InitialResourceVersions: has})
	r = d.must()
	if got := slices.Collect(maps.Keys(versions(r))); !slices.Equal(got, []string{slotB}) {
		t.Fatalf("a reconnect reporting %v got %v, want only %s", has, got, slotB)
	}
	d.ack(r, "")
	if again := d.recv(100 * time.Millisecond); again != nil {
		t.Fatalf("an ACK was answered with %v", versions(again))
	}

	// A new stream that reports having everything gets an empty answer,
	// whose ACK says it runs the snapshot's version.
	has[slotB] = hashOf(t, s4.GetResources(ecds)[slotB])
	e := h.delta(t, "n1")
	e.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}, InitialResourceVersions: has})
	if r = e.must(); len(r.GetResources()) != 0 || len(r.GetRemovedResources()) != 0 || r.GetSystemVersionInfo() != "v4" {
		t.Fatalf("a reconnect that has everything got %v, removals %v at %q; want nothing at v4", versions(r), r.GetRemovedResources(), r.GetSystemVersionInfo())
	}
}

// TestDeltaFirstWildcardAnswered: a wildcard subscription's first request
// is answered even when the snapshot has nothing of its type, so that the
// node finishes initializing; a subscription by name is not.
func TestDeltaFirstWildcardAnswered(t *testing.T) {
	h := start(t, Config{ADS: true})
	if err := h.cache.SetSnapshot(context.Background(), "n1", snap(t, "v1", "1", false)); err != nil {
		t.Fatal(err)
	}
	c := h.delta(t, "n1")
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType})
	if r := c.must(); len(r.GetResources()) != 0 || r.GetTypeUrl() != resource.ClusterType {
		t.Fatalf("got %d %s resources, want an empty cluster response", len(r.GetResources()), r.GetTypeUrl())
	}
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.RouteType, ResourceNamesSubscribe: []string{"r"}})
	if r := c.recv(100 * time.Millisecond); r != nil {
		t.Fatalf("a subscription by name to nothing was answered: %s", r.GetTypeUrl())
	}
}

// TestDeltaVersionMap: the snapshot's version map, when set, gives each
// resource its delta version (the builder puts what the node runs there).
func TestDeltaVersionMap(t *testing.T) {
	h := start(t, Config{ADS: true})
	s := snap(t, "v1", "1", false)
	s.VersionMap = map[string]map[string]string{ecds: {slotA: "a~auth@1", slotB: "b~"}}
	if err := h.cache.SetSnapshot(context.Background(), "n1", s); err != nil {
		t.Fatal(err)
	}
	c := h.delta(t, "n1")
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}})
	if got := versions(c.must()); !maps.Equal(got, s.VersionMap[ecds]) {
		t.Fatalf("versions %v, want %v", got, s.VersionMap[ecds])
	}
}

// TestDeltaSharedEncoding: delta responses of nodes on one snapshot carry
// the same encoded resources, and each response is its own message.
func TestDeltaSharedEncoding(t *testing.T) {
	c, err := New(Config{ADS: true})
	if err != nil {
		t.Fatal(err)
	}
	shared := snap(t, "v1", "1", false)
	got := map[string]*discovery.DeltaDiscoveryResponse{}
	for _, node := range []string{"a", "b"} {
		if err := c.SetSnapshot(context.Background(), node, shared); err != nil {
			t.Fatal(err)
		}
		out := make(chan cache.DeltaResponse, 1)
		req := &discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: node}, TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA}}
		cancel, err := c.CreateDeltaWatch(req, stream.NewDeltaSubscription(req.GetResourceNamesSubscribe(), nil, nil, true), out)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if got[node], err = (<-out).GetDeltaDiscoveryResponse(); err != nil {
			t.Fatal(err)
		}
		if n := len(got[node].GetResources()); n != 1 {
			t.Fatalf("%s: %d resources for a subscription to one", node, n)
		}
	}
	if got["a"].GetResources()[0] != got["b"].GetResources()[0] {
		t.Error("nodes on one snapshot got separate encodings")
	}
	if got["a"] == got["b"] {
		t.Error("two responses share one DeltaDiscoveryResponse: the server writes each one's nonce into it")
	}
}

// TestDeltaPushWindow: a large delta response holds the window's slot until
// its node answers; another node's waits and then carries its latest
// snapshot.
func TestDeltaPushWindow(t *testing.T) {
	h := start(t, Config{ADS: true, LargeResponseBytes: 256, PushWindow: 1})
	ctx := context.Background()
	for _, node := range []string{"a", "b"} {
		if err := h.cache.SetSnapshot(ctx, node, snap(t, "v1", "1", false)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := h.delta(t, "a"), h.delta(t, "b")
	sub := &discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}}
	a.send(sub)
	ra := a.must()
	b.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}})
	eventually(t, "b waits for the slot", func() bool { inFlight, queued := h.cache.Window(); return inFlight == 1 && queued == 1 })
	if err := h.cache.SetSnapshot(ctx, "b", snap(t, "v2", "2", false)); err != nil {
		t.Fatal(err)
	}
	a.ack(ra, "")
	if rb := b.must(); rb.GetSystemVersionInfo() != "v2" || len(rb.GetResources()) != 2 {
		t.Fatalf("b got %d resources at %q once a answered, want 2 at v2", len(rb.GetResources()), rb.GetSystemVersionInfo())
	}
}

// TestDeltaDiffers: the check SetSnapshot makes of every open delta watch
// agrees with the diff a response is built from, for subscriptions by name
// and wildcard alike.
func TestDeltaDiffers(t *testing.T) {
	te := &typeEncoding{byName: map[string]resourceEncoding{}}
	for name, v := range map[string]string{"a": "1", "b": "2"} {
		te.byName[name] = resourceEncoding{delta: &discovery.Resource{Name: name, Version: v}}
	}
	tests := []struct {
		name  string
		names []string // nil: wildcard
		has   map[string]string
	}{
		{name: "wildcard, has all", has: map[string]string{"a": "1", "b": "2"}},
		{name: "wildcard, one changed", has: map[string]string{"a": "1", "b": "1"}},
		{name: "wildcard, one missing", has: map[string]string{"a": "1"}},
		{name: "wildcard, one gone", has: map[string]string{"a": "1", "b": "2", "c": "3"}},
		{name: "named, has it", names: []string{"a"}, has: map[string]string{"a": "1"}},
		{name: "named, changed", names: []string{"a"}, has: map[string]string{"a": "0"}},
		{name: "named, missing", names: []string{"b"}, has: map[string]string{"a": "1"}},
		{name: "named, gone", names: []string{"c"}, has: map[string]string{"c": "3"}},
		{name: "named, never there", names: []string{"c"}, has: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := stream.NewDeltaSubscription(tt.names, nil, tt.has, true)
			send, removed, _ := deltaDiff(te, &sub)
			want := len(send)+len(removed) > 0
			if got := deltaDiffers(te, &sub); got != want {
				t.Errorf("deltaDiffers = %v, deltaDiff sends %d and removes %v", got, len(send), removed)
			}
		})
	}
}
