package wasmhost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const tickerGuest = "controlplane/wasmhost/testdata/guests/ticker"

// TestRunTicksResumesHeldRequest: the guest holds a request and resumes it
// from proxy_on_tick; RunTicks must drive the ticks, and AwaitRequest must
// see the resume (or give up when its context ends).
func TestRunTicksResumesHeldRequest(t *testing.T) {
	tests := []struct {
		name       string
		period     string // the guest's tick period, ms
		wait       time.Duration
		wantAction Action
		wantErr    error
		wantChain  string
	}{
		{name: "a tick resumes the request", period: "10", wait: 30 * time.Second,
			wantAction: ActionContinue, wantChain: "tick"},
		{name: "no ticks, the wait ends with its context", period: "0", wait: 100 * time.Millisecond,
			wantAction: ActionPause, wantErr: context.DeadlineExceeded},
	}
	m := testModule(t, tickerGuest)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logRecorder
			p := newPlugin(t, m, PluginConfig{Name: "ticker", Configuration: []byte(tt.period), Log: logs.log})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ticking := make(chan error, 1)
			go func() { ticking <- p.RunTicks(ctx) }()

			s, err := p.NewHTTPStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req := NewHeaders(":method", "GET", ":path", "/", "x-hold", "1")
			if a, err := s.RequestHeaders(req, true); err != nil || a != ActionPause {
				t.Fatalf("request headers: %v, %v; want pause", a, err)
			}
			wctx, wcancel := context.WithTimeout(ctx, tt.wait)
			defer wcancel()
			a, err := s.AwaitRequest(wctx)
			if a != tt.wantAction || !errors.Is(err, tt.wantErr) {
				t.Errorf("await = %v, %v; want %v, %v", a, err, tt.wantAction, tt.wantErr)
			}
			if got, _ := req.Get("x-chain"); got != tt.wantChain {
				t.Errorf("x-chain = %q, want %q", got, tt.wantChain)
			}
			if err := s.Done(); err != nil {
				t.Fatal(err)
			}
			// Closing the plugin ends its ticker, without error.
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-ticking; err != nil {
				t.Errorf("RunTicks: %v", err)
			}
		})
	}
}

// TestRunTicksReturnsTheTrap: a tick that traps fails the VM, and RunTicks
// says why.
func TestRunTicksReturnsTheTrap(t *testing.T) {
	p := newPlugin(t, testModule(t, tickerGuest), PluginConfig{Name: "ticker", Configuration: []byte("5 panic")})
	err := p.RunTicks(context.Background())
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "ticker: panic in tick") {
		t.Errorf("RunTicks = %v, want a trap quoting the panic", err)
	}
	if p.Failed() == nil {
		t.Error("the VM is not failed")
	}
}

// TestRunTicksFollowsThePeriod: ticks come at the guest's period, and
// RunTicks returns when its context ends.
func TestRunTicksFollowsThePeriod(t *testing.T) {
	metrics := NewMetrics()
	p := newPlugin(t, testModule(t, probeGuest), PluginConfig{Configuration: []byte("tick=5"), Metrics: metrics})
	ctx, cancel := context.WithCancel(context.Background())
	ticking := make(chan error, 1)
	go func() { ticking <- p.RunTicks(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := metrics.Get("probe_ticks", MetricCounter); got.Value >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fewer than 3 ticks in 30 s at a 5 ms period")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-ticking; err != nil {
		t.Errorf("RunTicks: %v", err)
	}
}
