package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Action is an operator's rollout command.
type Action string

const (
	Promote  Action = "promote"
	Pause    Action = "pause"
	Resume   Action = "resume"
	Rollback Action = "rollback"
	// ClearBad allows a version that was rolled back to be rolled out again.
	ClearBad Action = "clear-bad"
	// Reload is no command: it names a config reload that changed a
	// filter's entry, in the filter's history of actions.
	Reload Action = "reload"
)

// ReloadActor is who a config reload is recorded as: the control plane
// cannot know who edited the file.
const ReloadActor = "config file"

// ErrUnknownFilter is returned for commands naming a filter wasmfleet has
// never seen.
var ErrUnknownFilter = errors.New("unknown filter")

// ErrUnknownAction is returned for an action that is not one of the above.
var ErrUnknownAction = errors.New("unknown action")

// Command is an operator's request, handled in order with every other event.
type Command struct {
	Action Action
	Filter string
	// Digest names the version for ClearBad.
	Digest types.Digest
	// Reason is recorded with the action in the filter's history; for
	// Rollback it is the bad mark's reason too.
	Reason string
	// Actor is who asked, as the client says; recorded in the history.
	Actor string
}

type command struct {
	cmd Command
	// plan, when set, asks for a dry run of this configuration instead.
	plan *config.Config
	// reload, when set, replaces the running configuration.
	reload *config.Config
	// reply has room for the answer, so the loop never waits for the
	// caller.
	reply chan result
}

type result struct {
	changes []rollout.Change
	err     error
}

// Do runs a rollout command in the loop and returns its error, if any.
func (c *Controller) Do(ctx context.Context, cmd Command) error {
	r, err := c.call(ctx, command{cmd: cmd})
	if err != nil {
		return err
	}
	return r.err
}

// DryRun returns which nodes would change version if cfg replaced the
// running configuration now. Nothing changes.
func (c *Controller) DryRun(ctx context.Context, cfg config.Config) ([]rollout.Change, error) {
	r, err := c.call(ctx, command{plan: &cfg})
	if err != nil {
		return nil, err
	}
	return r.changes, r.err
}

// Reconfigure applies a new configuration (a config file edit) in order with
// every other event. Per-filter settings that the running modules refuse are
// kept as they were; the error lists them.
func (c *Controller) Reconfigure(ctx context.Context, cfg config.Config) error {
	r, err := c.call(ctx, command{reload: &cfg})
	if err != nil {
		return err
	}
	return r.err
}

func (c *Controller) call(ctx context.Context, cmd command) (result, error) {
	cmd.reply = make(chan result, 1)
	select {
	case c.cmds <- cmd:
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	select {
	case r := <-cmd.reply:
		return r, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// handleCommand runs cmd and answers it: a reload once the settings it
// sends to a trial run are settled, every other command at once.
func (c *Controller) handleCommand(ctx context.Context, cmd command) {
	if cmd.reload != nil {
		c.reconfigure(ctx, *cmd.reload, cmd.reply)
		return
	}
	// The status is a command's answer (the admin API returns the filter
	// as the command left it): answer publishes, then replies.
	c.answer(cmd.reply, c.runCommand(ctx, cmd))
}

func (c *Controller) runCommand(ctx context.Context, cmd command) result {
	if cmd.plan != nil {
		return c.dryRun(*cmd.plan)
	}
	rec, ok := c.filters[cmd.cmd.Filter]
	if !ok {
		return result{err: fmt.Errorf("rollout: %q: %w", cmd.cmd.Filter, ErrUnknownFilter)}
	}
	now := c.now()
	act := store.Action{Filter: cmd.cmd.Filter, Action: string(cmd.cmd.Action), Actor: cmd.cmd.Actor,
		Reason: cmd.cmd.Reason, Digest: rec.state.Candidate, At: now}
	var next types.FilterState
	var err error
	switch cmd.cmd.Action {
	case Promote:
		next, err = rollout.Promote(rec.settings, rec.state, now)
	case Pause:
		next, err = rollout.Pause(rec.settings, rec.state, now)
	case Resume:
		next, err = rollout.Resume(rec.settings, rec.state, now)
	case Rollback:
		act.Reason = cmp.Or(act.Reason, "rolled back by an operator")
		next, err = rollout.Rollback(rec.settings, rec.state, now, act.Reason)
		if err == nil {
			c.cfg.Metrics.Rollbacks.WithLabelValues(cmd.cmd.Filter, "operator").Inc()
		}
	case ClearBad:
		act.Digest = cmd.cmd.Digest
		next, err = rollout.ClearBad(rec.state, cmd.cmd.Digest)
	default:
		err = fmt.Errorf("rollout: %q: %w", cmd.cmd.Action, ErrUnknownAction)
	}
	if err != nil {
		// The planner's errors name the filter and the command already.
		return result{err: err}
	}
	rec.state = next
	log := c.log.With(zap.String("filter", cmd.cmd.Filter))
	log.Info("operator command applied", zap.String("action", string(cmd.cmd.Action)), zap.String("actor", cmd.cmd.Actor))
	c.record(rec, act, log)
	c.saveAndReconcile(ctx, rec, log)
	c.confirm(ctx, cmd.cmd.Filter)
	c.scheduleSteps()
	if cmd.cmd.Action == ClearBad {
		c.reoffer(ctx, rec, cmd.cmd.Digest, log)
	}
	return result{}
}

// record adds a to its filter's history of operator actions.
func (c *Controller) record(rec *filterRec, a store.Action, log *zap.Logger) {
	if err := c.cfg.Store.AddAction(a); err != nil {
		log.Error("cannot record operator action", zap.String("action", a.Action), zap.Error(err))
		c.fail(rec, err)
	}
}

// reoffer sends version d through admission again if the filter's source
// still holds it. A source reports a module only when it changes, so a
// version cleared of its bad mark while it sits unchanged in filters.d (or
// behind its tag) would otherwise not be offered again until the next
// change. Its bytes come from the store, which keeps every bad-marked
// version's module.
func (c *Controller) reoffer(ctx context.Context, rec *filterRec, d types.Digest, log *zap.Logger) {
	ev := rec.offered
	if ev == nil || ev.Digest != d || c.checkOwner(*ev) != nil {
		return // not in the filter's source (any more)
	}
	module, ok, err := c.cfg.Store.Module(d)
	if err != nil || !ok {
		log.Warn("cleared version is still in its source but no longer stored; it is offered again when its source changes",
			zap.String("digest", d.Short()), zap.Error(err))
		return
	}
	again := *ev
	again.Module = module
	log.Info("cleared version is still in its source: it goes to admission again", zap.String("digest", d.Short()))
	c.handleSource(ctx, again)
}

// dryRun plans the connected fleet under cfg and diffs it with the plan now.
func (c *Controller) dryRun(cfg config.Config) result {
	nodes := make([]string, 0, len(c.nodes))
	for n := range c.nodes {
		nodes = append(nodes, n)
	}
	inputs, _ := c.chain()
	before := rollout.Plan(inputs, nodes)
	after := make([]rollout.FilterInput, 0, len(inputs))
	for _, in := range inputs {
		spec, _ := cfg.FilterByName(in.Spec.Name)
		if raw := in.State.Settings; len(raw) > 0 {
			if s, err := config.ParseFilterSettings(c.settingsFile(spec.Name), spec, raw); err == nil {
				spec = s.WithDefaults()
			}
		}
		after = append(after, rollout.FilterInput{Spec: spec, State: in.State})
	}
	return result{changes: rollout.Diff(before, rollout.Plan(after, nodes))}
}
