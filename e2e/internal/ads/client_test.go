package ads

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

type nopHandler struct{}

func (nopHandler) Handle(*discovery.DiscoveryResponse) error { return nil }
func (nopHandler) Names(string) []string                     { return nil }

func TestBackoffIsJitteredDoublingAndCapped(t *testing.T) {
	tests := []struct {
		name     string
		attempt  int
		min, max time.Duration
	}{
		{name: "first", attempt: 0, min: 50 * time.Millisecond, max: 100 * time.Millisecond},
		{name: "second doubles", attempt: 1, min: 100 * time.Millisecond, max: 200 * time.Millisecond},
		{name: "third doubles", attempt: 2, min: 200 * time.Millisecond, max: 400 * time.Millisecond},
		{name: "capped", attempt: 10, min: 500 * time.Millisecond, max: time.Second},
		{name: "capped far out", attempt: 1000, min: 500 * time.Millisecond, max: time.Second},
	}
	c, err := New(Config{
		Node: &core.Node{Id: "n"}, Addr: "127.0.0.1:1", Handler: nopHandler{},
		BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second, Rand: rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := c.backoff(tc.attempt)
				if d < tc.min || d > tc.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Errorf("backoff(%d) barely varies: %d distinct values in 200", tc.attempt, len(seen))
			}
		})
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no node", cfg: Config{Addr: "127.0.0.1:1", Handler: nopHandler{}}},
		{name: "no address", cfg: Config{Node: &core.Node{Id: "n"}, Handler: nopHandler{}}},
		{name: "no handler", cfg: Config{Node: &core.Node{Id: "n"}, Addr: "127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
}
