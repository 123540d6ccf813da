package controller

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// FilterStatus is what `wasmfleet status` shows for one filter.
type FilterStatus struct {
	Name      string           `json:"name"`
	Position  int              `json:"position"` // in the chain; -1 when not served
	Stable    types.Digest     `json:"stable,omitempty"`
	Candidate types.Digest     `json:"candidate,omitempty"`
	By        config.RolloutBy `json:"by"`
	Percent   int              `json:"percent"` // of the fleet or of requests on the candidate
	Steps     []int            `json:"steps,omitempty"`
	Step      int              `json:"step"`
	StepSince time.Time        `json:"step_since,omitzero"`
	// NextStepAt is when the candidate moves to its next step; zero when no
	// step is due (no candidate, paused, at 100% or at the last step).
	NextStepAt time.Time       `json:"next_step_at,omitzero"`
	Paused     bool            `json:"paused,omitempty"`
	Retired    bool            `json:"retired,omitempty"`
	Required   bool            `json:"required,omitempty"`
	Source     string          `json:"source,omitempty"`
	LastError  string          `json:"last_error,omitempty"`
	ErrorAt    time.Time       `json:"error_at,omitzero"`
	Bad        []types.BadMark `json:"bad,omitempty"`
	// Admitting is the admission under way, nil when none is.
	Admitting *Admitting `json:"admitting,omitempty"`
}

// Admitting is a filter's admission under way: a module on trial, new
// settings on trial against the versions the fleet may run, or both.
// Nothing of it reaches the fleet before it passes.
type Admitting struct {
	// Digest is the module on trial; empty when only settings are.
	Digest types.Digest `json:"digest,omitempty"`
	// Settings names where the settings on trial come from (the filter's
	// NAME.yaml, or "config" for a reload); empty when the module is tried
	// with the settings in force.
	Settings string `json:"settings,omitempty"`
	// Since is when the admission was asked for; it may wait for a worker.
	Since time.Time `json:"since"`
}

// Status returns the filters as of the last event handled. Safe for
// concurrent use.
func (c *Controller) Status() []FilterStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.status)
}

// publish rebuilds the status view; called by the loop after every event.
func (c *Controller) publish() {
	pos := map[string]int{}
	for i, name := range c.order() {
		pos[name] = i
	}
	out := make([]FilterStatus, 0, len(c.filters))
	for name, rec := range c.filters {
		p, ok := pos[name]
		if !ok {
			p = -1
		}
		st, spec := rec.state, rec.settings
		percent := 0
		if st.Candidate != "" {
			percent = rollout.CurrentPercent(spec, st)
		}
		out = append(out, FilterStatus{
			Name: name, Position: p, Stable: st.Stable, Candidate: st.Candidate,
			By: spec.Rollout.By, Percent: percent, Steps: spec.Rollout.Steps, Step: st.Step, StepSince: st.StepSince,
			NextStepAt: rollout.NextStepAt(spec, st), Paused: st.Paused, Retired: st.Retired, Required: spec.Required, Source: spec.Source,
			LastError: rec.lastError, ErrorAt: rec.errorAt, Bad: st.Bad, Admitting: rec.trial.status(),
		})
	}
	// Chain order first; filters not in the chain (position -1) last, by name.
	slices.SortFunc(out, func(a, b FilterStatus) int {
		return cmp.Or(cmp.Compare(outOfChain(a), outOfChain(b)), cmp.Compare(a.Position, b.Position), strings.Compare(a.Name, b.Name))
	})
	c.mu.Lock()
	c.status = out
	c.mu.Unlock()
}

// outOfChain is 1 for a filter that is not served (position -1), else 0.
func outOfChain(f FilterStatus) int {
	if f.Position < 0 {
		return 1
	}
	return 0
}
