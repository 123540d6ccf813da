package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Tick calls proxy_on_tick if the guest set a tick period, once; RunTicks
// calls it on the guest's schedule. Pending queue notifications are
// delivered too.
func (p *Plugin) Tick(ctx context.Context) error {
	if err := p.enter(ctx); err != nil {
		return err
	}
	defer p.mu.Unlock()
	if p.tickPeriod == 0 {
		return nil
	}
	if _, _, err := p.invoke(ctx, p.rootID, p.fn.tick, uint64(p.rootID)); err != nil {
		return fmt.Errorf("wasmhost: %s: tick: %w", p.name(), err)
	}
	return nil
}

// RunTicks calls proxy_on_tick at the period the guest asks for, as
// Envoy's per-VM timer does (source/extensions/common/wasm/wasm.cc,
// Wasm::setTimerPeriod and Wasm::tickHandler): setting a period starts the
// timer afresh, so the first tick comes one period after the guest set it;
// period 0 stops it; after each tick the timer is re-armed with the period
// then in force. It blocks until ctx ends or the plugin is closed or fails,
// and returns the error of a tick that failed the VM, else nil. Run it on
// a goroutine of its own, at most once per plugin.
func (p *Plugin) RunTicks(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	arm := func() {
		if d := p.TickPeriod(); d > 0 {
			timer.Reset(d)
		} else {
			timer.Stop()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.dead:
			return nil
		case <-p.tickSet:
			arm()
		case <-timer.C:
			if err := p.Tick(ctx); err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrVMFailed) {
					// Stopped while the tick ran, closed, or failed by
					// another callback: not this tick's error.
					return nil
				}
				return err
			}
			arm()
		}
	}
}

// TickPeriod is the period the guest asked for with
// proxy_set_tick_period_milliseconds; 0 = no ticks.
func (p *Plugin) TickPeriod() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tickPeriod
}
