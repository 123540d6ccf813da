package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestBehindSubscriberResyncs overflows a subscriber's queue: the events
// that state can replace are dropped, but the subscriber then gets every
// answer of the nodes still connected, in order, and a Resync with the
// state those events led to, and after it events as usual. A node that came
// and went meanwhile leaves nothing behind.
func TestBehindSubscriberResyncs(t *testing.T) {
	const maxQueued, versions = 4, 10
	r := New(Config{MaxQueued: maxQueued, Now: func() time.Time { return epoch }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := r.Subscribe(ctx) // not read until the queue overflowed

	r.StreamOpened(sotw)
	r.Requested(sotw, n1, Request{TypeURL: ecds})
	wantAnswers := []string{""} // the report of n1's first request
	for i := 1; i <= versions; i++ {
		v := fmt.Sprint("v", i)
		r.Assigned("n1", v, types.Assignment{"auth": {Stable: d(v)}})
		r.Sent(sotw, ecds, v, fmt.Sprint(i))
		r.Requested(sotw, n1, Request{TypeURL: ecds, Version: v, Nonce: fmt.Sprint(i)})
		wantAnswers = append(wantAnswers, v)
	}
	gone := Stream{ID: 3}
	r.StreamOpened(gone)
	r.Requested(gone, Identity{ID: "n3"}, Request{TypeURL: ecds})
	r.StreamClosed(gone)
	if r.DroppedEvents() == 0 {
		t.Fatal("nothing dropped: the test did not overflow the queue")
	}

	var answers []string
	var resync Event
	for resync.Kind != Resync {
		e := next(t, events)
		switch {
		case e.Node == "n3":
			t.Fatalf("event %s of a node that came and went while the subscriber was behind", e.Kind)
		case e.Kind == Answered:
			answers = append(answers, e.Version)
		}
		resync = e
	}
	if !slices.Equal(answers, wantAnswers) {
		t.Fatalf("n1's answers = %q, want %q", answers, wantAnswers)
	}
	if len(resync.Nodes) != 1 || resync.Nodes[0].ID != "n1" || resync.Nodes[0].Filters[0].Acked.Stable != d(fmt.Sprint("v", versions)) {
		t.Fatalf("Resync nodes = %+v, want n1 running v%d", resync.Nodes, versions)
	}

	r.StreamClosed(sotw)
	if e := next(t, events); e.Kind != NodeDisconnected || e.Node != "n1" || e.Session != resync.Nodes[0].Session {
		t.Fatalf("after the Resync: %s %s session %d, want n1 disconnected in session %d", e.Kind, e.Node, e.Session, resync.Nodes[0].Session)
	}
}

// next returns the next event, failing the test if none comes in time.
func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return Event{}
	}
}

// TestHammerBehindSubscriber: many nodes connect, answer and leave at once
// while a slow subscriber keeps falling behind; applying what it receives
// (connects, disconnects, Resyncs) always ends with the registry's own view
// of who is connected.
func TestHammerBehindSubscriber(t *testing.T) {
	r := New(Config{MaxQueued: 8})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := r.Subscribe(ctx)
	const nodes, rounds = 16, 20
	seen := make(chan map[string]uint64)
	go func() {
		// Read only once the queue overflowed, then slowly, while the
		// nodes keep going: it falls behind again and again.
		for r.DroppedEvents() == 0 {
			time.Sleep(time.Millisecond)
		}
		connected := map[string]uint64{}
		resyncs := 0
		for e := range events {
			switch e.Kind {
			case NodeConnected:
				connected[e.Node] = e.Session
			case NodeDisconnected:
				delete(connected, e.Node)
			case Resync:
				resyncs++
				clear(connected)
				for _, n := range e.Nodes {
					connected[n.ID] = n.Session
				}
			}
			if _, ok := connected["sentinel"]; ok && resyncs > 0 {
				seen <- connected
				return
			}
			time.Sleep(time.Millisecond / 10) // a slow reader
		}
	}()
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := Identity{ID: fmt.Sprintf("node-%02d", i)}
			for round := range rounds {
				s := Stream{ID: int64(i*rounds + round + 1)}
				r.StreamOpened(s)
				r.Requested(s, id, Request{TypeURL: ecds})
				v := fmt.Sprint("v", round)
				r.Assigned(id.ID, v, types.Assignment{"auth": {Stable: d(v)}})
				r.Sent(s, ecds, v, "1")
				r.Requested(s, id, Request{TypeURL: ecds, Version: v, Nonce: "1"})
				if round < rounds-1 || i%2 == 0 {
					r.StreamClosed(s) // odd nodes stay connected at the end
				}
			}
		}()
	}
	wg.Wait()
	sentinel := Stream{ID: -1}
	r.StreamOpened(sentinel)
	r.Requested(sentinel, Identity{ID: "sentinel"}, Request{TypeURL: ecds})
	var got map[string]uint64
	select {
	case got = <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the subscriber never saw the sentinel after a Resync")
	}
	want := map[string]uint64{}
	for _, n := range r.Nodes() {
		want[n.ID] = n.Session
	}
	if !maps.Equal(got, want) {
		t.Fatalf("subscriber's view %v, registry's %v", got, want)
	}
}
