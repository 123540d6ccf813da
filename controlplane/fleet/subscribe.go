package fleet

import (
	"context"
	"sync"
)

// subscriber is one Subscribe call: an unbounded-looking queue (capped at
// maxQueued) drained into its channel by its own goroutine, so publishing
// never waits for a reader.
type subscriber struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{} // capacity 1: "the queue is not empty"
	out   chan Event
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
		if len(s.queue) >= r.maxQueued {
			r.dropped++
			s.mu.Unlock()
			continue
		}
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// pump delivers a subscriber's queue in order until ctx ends.
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
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range batch {
			select {
			case s.out <- e:
			case <-ctx.Done():
				return
			}
		}
	}
}
