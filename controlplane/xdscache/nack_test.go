package xdscache

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
)

const slotC = "slot.c"

// ecdsSnap is a snapshot of ECDS resources named by their payloads.
func ecdsSnap(t *testing.T, version string, payloads map[string]string) *cache.Snapshot {
	t.Helper()
	var rs []types.Resource
	for name, p := range payloads {
		rs = append(rs, extension(t, name, []byte(p)))
	}
	s, err := cache.NewSnapshot(version, map[resource.Type][]types.Resource{ecds: rs})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// heldOf is the delta version of the snapshot's resources named.
func heldOf(t *testing.T, s *cache.Snapshot, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range names {
		out[name] = hashOf(t, s.GetResources(ecds)[name])
	}
	return out
}

// envoyNode is what an Envoy-like node keeps of ECDS on one delta stream,
// as DeltaSubscriptionState does: a response is taken whole, or, if it
// carries a resource the node refuses, not at all and NACKed.
type envoyNode struct {
	c        *deltaClient
	versions map[string]string
	// refuse is the versions the node fails to load.
	refuse map[string]bool
}

// settled fails t unless the node holds want and its last answer was
// answered with nothing.
func (n *envoyNode) settled(t *testing.T, want map[string]string) {
	t.Helper()
	if !maps.Equal(n.versions, want) {
		t.Fatalf("the node has %v, want %v", n.versions, want)
	}
	if again := n.c.recv(100 * time.Millisecond); again != nil {
		t.Fatalf("an ACK was answered with %v", versions(again))
	}
}

// take applies r (or refuses it) and answers it; it reports a NACK.
func (n *envoyNode) take(r *discovery.DeltaDiscoveryResponse) (nacked bool) {
	for _, res := range r.GetResources() {
		if n.refuse[res.GetVersion()] {
			n.c.ack(r, "failed to load "+res.GetName())
			return true
		}
	}
	for _, res := range r.GetResources() {
		n.versions[res.GetName()] = res.GetVersion()
	}
	for _, name := range r.GetRemovedResources() {
		delete(n.versions, name)
	}
	n.c.ack(r, "")
	return false
}

// TestDeltaNACKResends: a delta response carrying a bad config and a good
// one is NACKed; the node keeps neither (Envoy's DeltaSubscriptionState
// records versions only once applied), so the cache sends both again at
// the snapshot's versions, and once the bad one is rolled back the node
// gets what it still lacks and ends with both good. go-control-plane's
// server records a sent response as held, so without the correction the
// good config would never be sent again.
func TestDeltaNACKResends(t *testing.T) {
	h := start(t, Config{ADS: true})
	ctx := context.Background()
	n := &envoyNode{c: h.delta(t, "n1"), versions: map[string]string{}}

	v1 := ecdsSnap(t, "v1", map[string]string{slotA: "a1", slotB: "b1"})
	if err := h.cache.SetSnapshot(ctx, "n1", v1); err != nil {
		t.Fatal(err)
	}
	n.c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}})
	if n.take(n.c.must()) {
		t.Fatal("the first response was refused")
	}

	// A bad config for A and a good new one for B, in one response.
	v2 := ecdsSnap(t, "v2", map[string]string{slotA: "bad", slotB: "b2"})
	n.refuse = map[string]bool{heldOf(t, v2, slotA)[slotA]: true}
	if err := h.cache.SetSnapshot(ctx, "n1", v2); err != nil {
		t.Fatal(err)
	}
	r := n.c.must()
	if got, want := versions(r), heldOf(t, v2, slotA, slotB); !maps.Equal(got, want) {
		t.Fatalf("v2: %v, want %v", got, want)
	}
	if !n.take(r) {
		t.Fatal("the bad config was taken")
	}

	// The NACK is answered with both again, at the snapshot's versions.
	r = n.c.must()
	if got, want := versions(r), heldOf(t, v2, slotA, slotB); !maps.Equal(got, want) || r.GetSystemVersionInfo() != "v2" {
		t.Fatalf("answer to the NACK: %v at %q, want %v at v2", got, r.GetSystemVersionInfo(), want)
	}

	// The rollback puts A's stable config back; the node refuses the
	// re-send too (it still carries the bad A), and then gets B alone: it
	// has A's stable config.
	v3 := ecdsSnap(t, "v3", map[string]string{slotA: "a1", slotB: "b2"})
	if err := h.cache.SetSnapshot(ctx, "n1", v3); err != nil {
		t.Fatal(err)
	}
	if !n.take(r) {
		t.Fatal("the re-sent bad config was taken")
	}
	r = n.c.must()
	if got, want := versions(r), heldOf(t, v3, slotB); !maps.Equal(got, want) || r.GetSystemVersionInfo() != "v3" {
		t.Fatalf("after the rollback: %v at %q, want %v at v3", got, r.GetSystemVersionInfo(), want)
	}
	if n.take(r) {
		t.Fatal("the rollback was refused")
	}
	n.settled(t, heldOf(t, v3, slotA, slotB))
}

// TestDeltaNACKOfOlderResponse: a response is NACKed after a newer one
// went out on the stream (the node subscribed to more before it answered):
// what the NACKed one carried or removed is sent again, removals too, and
// a resource a later response carries again counts from before the NACKed
// one.
func TestDeltaNACKOfOlderResponse(t *testing.T) {
	h := start(t, Config{ADS: true})
	ctx := context.Background()
	n := &envoyNode{c: h.delta(t, "n1"), versions: map[string]string{}}
	expect := func(what string, r *discovery.DeltaDiscoveryResponse, want map[string]string, removed ...string) {
		t.Helper()
		if got := versions(r); !maps.Equal(got, want) || !slices.Equal(r.GetRemovedResources(), removed) {
			t.Fatalf("%s: %v removing %v, want %v removing %v", what, got, r.GetRemovedResources(), want, removed)
		}
	}

	v1 := ecdsSnap(t, "v1", map[string]string{slotA: "a1", slotB: "b1", slotC: "c1"})
	if err := h.cache.SetSnapshot(ctx, "n1", v1); err != nil {
		t.Fatal(err)
	}
	n.c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}})
	if n.take(n.c.must()) {
		t.Fatal("the first response was refused")
	}

	// r2: A bad, B removed.
	v2 := ecdsSnap(t, "v2", map[string]string{slotA: "bad", slotC: "c1"})
	n.refuse = map[string]bool{heldOf(t, v2, slotA)[slotA]: true}
	if err := h.cache.SetSnapshot(ctx, "n1", v2); err != nil {
		t.Fatal(err)
	}
	r2 := n.c.must()
	expect("r2", r2, heldOf(t, v2, slotA), slotB)

	// Before the node answers r2 it subscribes to C: r3 carries C alone.
	n.c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotC}})
	r3 := n.c.must()
	expect("r3", r3, heldOf(t, v2, slotC))

	// The NACK of r2 is answered with r2 again: the node has A's old
	// config and still has B.
	if !n.take(r2) {
		t.Fatal("r2 was taken")
	}
	r4 := n.c.must()
	expect("answer to the NACK of r2", r4, heldOf(t, v2, slotA), slotB)

	// A is rolled back before the node answers r3: r5 carries it (the
	// cache takes the node to have r4's bad A until r4 is answered).
	v3 := ecdsSnap(t, "v3", map[string]string{slotA: "a1", slotC: "c1"})
	if err := h.cache.SetSnapshot(ctx, "n1", v3); err != nil {
		t.Fatal(err)
	}
	if n.take(r3) {
		t.Fatal("r3 was refused")
	}
	r5 := n.c.must()
	expect("answer to the ACK of r3", r5, heldOf(t, v3, slotA))

	// The NACK of r4 leaves A to r5 and B's removal undone: r6 removes B.
	if !n.take(r4) {
		t.Fatal("r4 was taken")
	}
	r6 := n.c.must()
	expect("answer to the NACK of r4", r6, map[string]string{}, slotB)
	if n.take(r5) || n.take(r6) {
		t.Fatal("the rollback was refused")
	}
	n.settled(t, heldOf(t, v3, slotA, slotC))
}

// TestDeltaNACKNotAcrossStreams: the cache keeps what each stream was sent
// apart. A node with two streams open: the first leaves a re-send
// unanswered while the second is answered and ACKs (an answer forgets the
// older responses of its own stream only); the first's NACK of its re-send
// still has the rejected resources sent again on the first stream.
func TestDeltaNACKNotAcrossStreams(t *testing.T) {
	h := start(t, Config{ADS: true})
	ctx := context.Background()
	v1 := ecdsSnap(t, "v1", map[string]string{slotA: "a1", slotB: "b1"})
	if err := h.cache.SetSnapshot(ctx, "n1", v1); err != nil {
		t.Fatal(err)
	}
	c := h.delta(t, "n1")
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}})
	c.ack(c.must(), "bad config")
	resent := c.must() // nonce "2" on this stream, not answered yet

	d := h.delta(t, "n1")
	d.send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResourceNamesSubscribe: []string{slotA, slotB}, InitialResourceVersions: heldOf(t, v1, slotA, slotB)})
	r := d.must()
	if len(r.GetResources()) != 0 || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("a new stream that has everything got %v removing %v", versions(r), r.GetRemovedResources())
	}
	d.ack(r, "")
	eventually(t, "the second stream's ACK taken in", func() bool {
		h.cache.mu.Lock()
		defer h.cache.mu.Unlock()
		for _, w := range h.cache.nodes["n1"].watches {
			if w.delta.GetResponseNonce() == r.GetNonce() {
				return true
			}
		}
		return false
	})

	c.ack(resent, "bad config")
	if again := c.must(); !maps.Equal(versions(again), versions(resent)) {
		t.Fatalf("a NACK of %v on the first stream was answered with %v", versions(resent), versions(again))
	}
}

// TestDeltaStreamAnswers: the cache's record of one stream's type, for
// answers in the orders a node may give them.
func TestDeltaStreamAnswers(t *testing.T) {
	v := func(s string) held { return held{version: s, ok: true} }
	none := held{}
	// Three responses as the stream sent them: 1 carries a@2 and b@2
	// (node had a@1, not b), 2 carries a@3 (taken to be over a@2) and
	// removes c (node had c@1), 3 carries nothing.
	sent := func() *deltaStream {
		return &deltaStream{sent: []*sentDelta{
			{nonce: "1", before: map[string]held{"a": v("1"), "b": none}},
			{nonce: "2", before: map[string]held{"a": v("2"), "c": v("1")}},
			{nonce: "3"},
		}}
	}
	returned := map[string]string{"a": "3", "b": "2"}
	tests := []struct {
		name    string
		answers []*discovery.DeltaDiscoveryRequest
		known   map[string]string
		left    []string // nonces still unanswered
	}{
		{name: "all ACKed", answers: []*discovery.DeltaDiscoveryRequest{ack("1"), ack("2"), ack("3")}, known: returned},
		{name: "last ACKed only", answers: []*discovery.DeltaDiscoveryRequest{ack("3")}, known: returned},
		{name: "first NACKed", answers: []*discovery.DeltaDiscoveryRequest{nack("1")},
			known: map[string]string{"a": "3"}, left: []string{"2", "3"}},
		{name: "first NACKed, then second", answers: []*discovery.DeltaDiscoveryRequest{nack("1"), nack("2")},
			known: map[string]string{"a": "1", "c": "1"}, left: []string{"3"}},
		{name: "second NACKed", answers: []*discovery.DeltaDiscoveryRequest{ack("1"), nack("2")},
			known: map[string]string{"a": "2", "b": "2", "c": "1"}, left: []string{"3"}},
		{name: "unknown nonce", answers: []*discovery.DeltaDiscoveryRequest{nack("9")},
			known: returned, left: []string{"1", "2", "3"}},
		{name: "NACK, then unsubscribed", answers: []*discovery.DeltaDiscoveryRequest{nack("1"), {ResourceNamesUnsubscribe: []string{"b"}}},
			known: map[string]string{"a": "3", "b": "2"}, left: []string{"2", "3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := sent()
			for _, req := range tc.answers {
				d.answered(req)
			}
			if got := d.known(returned); !maps.Equal(got, tc.known) {
				t.Errorf("known %v, want %v", got, tc.known)
			}
			var left []string
			for _, s := range d.sent {
				left = append(left, s.nonce)
			}
			if !slices.Equal(left, tc.left) {
				t.Errorf("unanswered %v, want %v", left, tc.left)
			}
		})
	}
}

func ack(nonce string) *discovery.DeltaDiscoveryRequest {
	return &discovery.DeltaDiscoveryRequest{ResponseNonce: nonce}
}

func nack(nonce string) *discovery.DeltaDiscoveryRequest {
	return &discovery.DeltaDiscoveryRequest{ResponseNonce: nonce, ErrorDetail: &status.Status{Code: 13, Message: "rejected"}}
}
