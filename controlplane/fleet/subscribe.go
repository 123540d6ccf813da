package fleet

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// subscriber is one Subscribe call: a queue capped at maxQueued, drained
// into its channel by its own goroutine, so publishing never waits for a
// reader.
//
// A subscriber whose queue is full is behind: events to it are dropped,
// except the Answered events of connected nodes, which are held per node
// (in order) because no state replays them; a node's are let go when its
// session ends, so what is held stays within what the connected nodes
// answered to pushes while the subscriber was behind. Once the queue is
// drained the pump hands over the held answers and a Resync, and the
// subscriber is caught up.
type subscriber struct {
	mu     sync.Mutex
	queue  []Event
	behind bool
	held   map[string][]Event // node -> its Answered events while behind
	wake   chan struct{}      // capacity 1: "there is something to deliver"
	out    chan Event
}

func (r *registry) Subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{wake: make(chan struct{}, 1), out: make(chan Event)}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	go r.pump(ctx, s)
	return s.out
}

// publish queues e for every subscriber; the caller holds r.mu.
func (r *registry) publish(e Event) {
	for s := range r.subs {
		s.mu.Lock()
		if !s.behind && len(s.queue) >= r.maxQueued {
			s.behind = true
			r.log.Warn("subscriber fell behind; dropping its events until it catches up")
		}
		switch {
		case !s.behind:
			s.queue = append(s.queue, e)
		case e.Kind == Answered:
			if s.held == nil {
				s.held = map[string][]Event{}
			}
			s.held[e.Node] = append(s.held[e.Node], e)
		default:
			r.dropped++
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// ended drops the answers held for node, whose session just ended: a
// subscriber learns that from the Resync and starts the node afresh. The
// caller holds r.mu.
func (r *registry) ended(node string) {
	for s := range r.subs {
		s.mu.Lock()
		if held, ok := s.held[node]; ok {
			r.dropped += uint64(len(held))
			delete(s.held, node)
		}
		s.mu.Unlock()
	}
}

// next returns what s is to be sent now: its queue, or, once that is
// drained while s is behind, the answers held and a Resync with the state
// they lead to (taken under r.mu, so no event falls between the two).
func (r *registry) next(s *subscriber) []Event {
	s.mu.Lock()
	batch := s.queue
	s.queue = nil
	behind := s.behind
	s.mu.Unlock()
	if len(batch) > 0 || !behind {
		return batch
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Nothing was queued since: a subscriber that is behind queues nothing.
	for _, node := range slices.Sorted(maps.Keys(s.held)) {
		batch = append(batch, s.held[node]...)
	}
	s.held, s.behind = nil, false
	return append(batch, Event{Kind: Resync, At: r.now(), Nodes: r.statusAll()})
}

// pump delivers a subscriber's events in order until ctx ends.
func (r *registry) pump(ctx context.Context, s *subscriber) {
	defer func() {
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
		close(s.out)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for batch := r.next(s); len(batch) > 0; batch = r.next(s) {
			for _, e := range batch {
				select {
				case s.out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
