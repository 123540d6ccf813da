package controller

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
)

// scheduleSteps sets the timer for the earliest rollout step due.
func (c *Controller) scheduleSteps() {
	if c.timer == nil {
		return
	}
	now := c.now()
	var next time.Time
	for _, rec := range c.filters {
		// Advance with the current time only reports when the step is due
		// unless it is due already, in which case fire at once.
		_, due, moved := rollout.Advance(rec.settings, rec.state, now)
		if moved {
			due = now
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	c.timer.Stop()
	if !next.IsZero() {
		c.timer.Reset(max(next.Sub(now), 0))
	}
}

// advanceSteps moves every due rollout to its next step.
func (c *Controller) advanceSteps(ctx context.Context) {
	now := c.now()
	changed := false
	for name, rec := range c.filters {
		next, _, moved := rollout.Advance(rec.settings, rec.state, now)
		if !moved {
			continue
		}
		rec.state = next
		changed = true
		log := c.log.With(zap.String("filter", name))
		log.Info("rollout advanced", zap.Int("step", next.Step), zap.Int("percent", rollout.CurrentPercent(rec.settings, next)))
		if err := c.cfg.Store.SetState(next); err != nil {
			log.Error("cannot persist filter state", zap.Error(err))
		}
	}
	if changed {
		c.reconcile(ctx)
	}
	c.scheduleSteps()
}
