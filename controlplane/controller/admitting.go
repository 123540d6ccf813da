package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/secrets"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// This file takes admission off the loop. A trial run takes up to
// limits.trial_timeout; while it ran inside the loop, ACKs, NACKs, node
// connects, operator commands and every other filter's modules waited. Now
// the loop hands each filter's trial to a bounded pool of workers and goes
// on; the outcome comes back as an event and is applied in the loop, which
// stays the only writer of the controller's state.
//
// A filter has at most one trial. Whatever changes what it would try (a new
// module, new settings, the module removed, a reload) replaces it and
// cancels the old one, so the outcome of a trial is applied only while it
// is still the filter's: a module is never admitted with settings other
// than the ones it was tried with.

// defaultAdmissionWorkers is one worker per CPU the Go runtime uses: a trial
// run interprets the guest and is CPU-bound, so more trials at once than
// CPUs would not finish more of them sooner, only stretch each toward
// limits.trial_timeout (failing modules that pass alone) and hold more trial
// memory (up to limits.trial_memory_mib each) at once.
func defaultAdmissionWorkers() int { return max(1, runtime.GOMAXPROCS(0)) }

// trial is what a filter waits on admission for: new settings to try
// against the versions the fleet may run, a new module to try with the
// settings it would be served with, or both (a module that arrives while
// its filter's new settings are on trial is tried with those).
type trial struct {
	id uint64
	// change is the settings change on trial; nil when the module is tried
	// with the settings in force.
	change *settingsChange
	// module is the module event on trial, bytes included; nil when only
	// settings are.
	module *types.Event
	// served is exactly what the trial runs with (secrets resolved), and
	// so what the module is served with if it passes; res redacts its
	// secrets.
	served config.Filter
	res    secrets.Resolved
	// running are the versions the fleet may run (stable, candidate) that
	// must accept change. That set can only shrink (a rollback, a
	// promotion) while the trial runs: only a trial adds a version.
	running []types.Digest
	since   time.Time
	// ctx ends when the trial is replaced or done, or the controller stops.
	ctx    context.Context
	cancel context.CancelFunc
	// reloads wait for the outcome of change to answer Reconfigure.
	reloads []reloadPart
}

// status is the trial as Status shows it; nil for none.
func (t *trial) status() *Admitting {
	if t == nil {
		return nil
	}
	a := &Admitting{Digest: moduleDigest(t.module), Since: t.since}
	if t.change != nil {
		a.Settings = t.change.file
	}
	return a
}

// settingsChange is new settings for a filter, parsed and with their
// secrets read.
type settingsChange struct {
	next config.Filter
	res  secrets.Resolved
	// file names where the settings come from in errors: the filter's
	// NAME.yaml or "config".
	file string
	// fromFile is set when the change is a NAME.yaml in the watch
	// directory, raw as written (nil: the file was removed). Refused, it
	// holds the filter's modules back until the file is fixed; a reload's
	// change refused keeps the settings in force.
	fromFile bool
	raw      []byte
}

func (s *settingsChange) served() config.Filter {
	f := s.next
	f.Config = s.res.Config
	return f
}

// reloadPart is one filter's share of a Reconfigure: answered once the
// settings the reload gave it are settled.
type reloadPart struct {
	wait *reloadWait
	// changed names what the reload changed of the filter's entry, for
	// its history.
	changed []string
}

// reloadWait holds a Reconfigure's answer until each filter whose settings
// it sent to a trial has its outcome: the error lists those refused.
type reloadWait struct {
	reply chan<- result
	left  int
	errs  []error
}

// trialJob is a trial as a worker gets it: its own copy, so the loop may
// change the trial meanwhile.
type trialJob struct {
	ctx     context.Context
	id      uint64
	filter  string
	file    string
	module  *types.Event
	served  config.Filter
	res     secrets.Resolved
	running []types.Digest
}

// trialResult is a worker's answer, an event for the loop.
type trialResult struct {
	id     uint64
	filter string
	// settingsErr says why a running version refused the new settings;
	// moduleErr why the module was refused (not tried after settingsErr).
	settingsErr, moduleErr error
	// staged is the module, written to the store while its trial ran but
	// not visible there yet: the loop commits it if it admits the module
	// and discards it otherwise. Nil if staging failed.
	staged *store.Staged
}

// trialRunner is what the workers may touch: every part of it is safe for
// concurrent use, and none of it is the loop's state.
type trialRunner struct {
	admitter admission.Admitter
	store    store.Store
	metrics  *metrics.Metrics
}

// work runs trials until ctx ends. A job's ctx ends with ctx or when its
// trial is replaced.
func (r *trialRunner) work(ctx context.Context, jobs <-chan trialJob, results chan<- trialResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			res := r.run(j)
			select {
			case results <- res:
			case <-ctx.Done():
				res.discard()
				return
			}
		}
	}
}

func (r *trialRunner) run(j trialJob) trialResult {
	res := trialResult{id: j.id, filter: j.filter}
	for _, d := range j.running {
		module, ok, err := r.store.Module(d)
		if err != nil || !ok {
			res.settingsErr = errors.Join(fmt.Errorf("%s: module %s is missing from the store", j.file, d.Short()), err)
			return res
		}
		if err := r.admit(j.ctx, j.file, module, d, nil, j.served, j.res); err != nil {
			res.settingsErr = fmt.Errorf("%s: version %s does not accept these settings: %w", j.file, d.Short(), err)
			return res
		}
	}
	if ev := j.module; ev != nil {
		// The store's fsync of the module's megabytes waits on the disk
		// while the trial runs on the CPU: done side by side, storing an
		// admitted module is left a rename in the loop. Staged, the bytes
		// are nowhere the fleet or the module server could get them.
		staged := make(chan *store.Staged, 1)
		go func() {
			st, err := r.store.StageModule(ev.Module)
			if err != nil {
				st = nil // the loop's PutModule stores it, or says why not
			}
			staged <- st
		}()
		res.moduleErr = r.admit(j.ctx, ev.Origin.Ref, ev.Module, ev.Digest, ev.Signature, j.served, j.res)
		res.staged = <-staged // the loop commits or discards it with the outcome
	}
	return res
}

// discard drops the result's staged module, if any.
func (res *trialResult) discard() {
	if res.staged != nil {
		res.staged.Discard()
		res.staged = nil
	}
}

// admit runs admission of module with served, whose secrets res redacts,
// and records the outcome in metrics; an interrupted trial says nothing
// about the module and is not counted. The error holds none of the secrets.
func (r *trialRunner) admit(ctx context.Context, file string, module []byte, d types.Digest, sig []byte, served config.Filter, res secrets.Resolved) error {
	start := time.Now()
	_, err := r.admitter.Admit(ctx, admission.Request{
		File: file, Filter: served.Name, Module: module, Digest: d, Settings: served, Signature: sig,
		Redact: res.Redact,
	})
	err = res.RedactError(err) // whatever the admitter is
	if ctx.Err() != nil {
		return err
	}
	r.metrics.AdmissionSeconds.WithLabelValues(served.Name).Observe(time.Since(start).Seconds())
	outcome := "admitted"
	if err != nil {
		outcome = "rejected"
	}
	r.metrics.Admissions.WithLabelValues(served.Name, outcome).Inc()
	return err
}

// startWorkers starts the pool; the returned function waits for it to
// stop once ctx ends.
func (c *Controller) startWorkers(ctx context.Context, results chan<- trialResult) (wait func()) {
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() { c.runner.work(ctx, c.jobs, results) })
	}
	return wg.Wait
}

// nextJob is the channel and job to hand a worker: nil (no case in the
// loop's select) while no trial is queued.
func (c *Controller) nextJob() (chan<- trialJob, trialJob) {
	if len(c.queue) == 0 {
		return nil, trialJob{}
	}
	return c.jobs, c.job(c.queue[0])
}

func (c *Controller) job(name string) trialJob {
	t := c.filters[name].trial
	file := "config"
	if t.change != nil {
		file = t.change.file
	}
	return trialJob{ctx: t.ctx, id: t.id, filter: name, file: file, module: t.module, served: t.served, res: t.res, running: t.running}
}

// pending returns the filter's settings change and module waiting on
// admission, if any.
func (r *filterRec) pending() (*settingsChange, *types.Event) {
	if r.trial == nil {
		return nil, nil
	}
	return r.trial.change, r.trial.module
}

// submit makes change (nil: the settings in force) and module (nil: none)
// what the filter waits on admission for, replacing its trial. A trial that
// would try exactly the same keeps running; any other is cancelled, and
// its outcome dropped when it comes. reloads join the trial's: they wait
// for change, or are answered now when there is none.
func (c *Controller) submit(ctx context.Context, rec *filterRec, change *settingsChange, module *types.Event, reloads ...reloadPart) {
	name := rec.state.Filter
	old := rec.trial
	if old != nil {
		reloads = append(old.reloads, reloads...)
	}
	if change == nil {
		for _, p := range reloads {
			c.settleReload(rec, p, nil)
		}
		reloads = nil
	}
	if change == nil && module == nil {
		if old != nil {
			c.drop(name)
		}
		return
	}
	t := &trial{change: change, module: module, served: rec.served(), res: rec.resolved, since: c.now(), reloads: reloads}
	if change != nil {
		t.served, t.res = change.served(), change.res
		for _, d := range []types.Digest{rec.state.Stable, rec.state.Candidate} {
			if d != "" {
				t.running = append(t.running, d)
			}
		}
	}
	if old != nil && old.tries(t) {
		old.change, old.module, old.reloads = change, module, reloads
		return
	}
	if old != nil {
		c.drop(name)
	}
	c.trialID++
	t.id = c.trialID
	t.ctx, t.cancel = context.WithCancel(ctx)
	rec.trial = t
	c.queue = append(c.queue, name)
	c.log.Debug("admission queued", zap.String("filter", name), zap.String("digest", moduleDigest(module).Short()),
		zap.Bool("settings", change != nil), zap.Int("queued", len(c.queue)))
}

// tries reports whether t runs the same trial as u: the same module with
// the same trial inputs against the same versions.
func (t *trial) tries(u *trial) bool {
	return moduleDigest(t.module) == moduleDigest(u.module) && sameSignature(t.module, u.module) &&
		sameTrialInputs(t.served, u.served) && slices.Equal(t.running, u.running)
}

func moduleDigest(ev *types.Event) types.Digest {
	if ev == nil {
		return ""
	}
	return ev.Digest
}

func sameSignature(a, b *types.Event) bool {
	return a == nil || b == nil || string(a.Signature) == string(b.Signature)
}

// drop forgets the filter's trial: cancelled if a worker has it, taken off
// the queue if not.
func (c *Controller) drop(name string) {
	rec := c.filters[name]
	rec.trial.cancel()
	rec.trial = nil
	c.queue = slices.DeleteFunc(c.queue, func(n string) bool { return n == name })
}

// dispatched notes that a worker took the first queued trial.
func (c *Controller) dispatched() { c.queue = c.queue[1:] }

// trialDone applies a trial's outcome, unless the trial is no longer the
// filter's: then whatever replaced it decides, and this outcome is dropped.
func (c *Controller) trialDone(ctx context.Context, res trialResult) {
	// A staged module not committed below is dropped.
	defer res.discard()
	rec := c.filters[res.filter] // a filter, once seen, stays
	log := c.log.With(zap.String("filter", res.filter))
	if rec.trial == nil || rec.trial.id != res.id {
		log.Debug("outcome of a replaced trial dropped")
		return
	}
	t := rec.trial
	t.cancel()
	rec.trial = nil
	changed, admitted := false, false
	if ch := t.change; ch != nil {
		switch {
		case res.settingsErr != nil && ch.fromFile:
			c.refuseFile(ctx, rec, res.settingsErr, log)
		case res.settingsErr != nil:
			log.Error("reloaded settings refused; the filter keeps its previous ones", zap.Error(res.settingsErr))
			c.fail(rec, res.settingsErr)
		default:
			c.adoptSettings(rec, ch, log)
			changed = true
		}
	}
	if ev := t.module; ev != nil {
		switch {
		case res.settingsErr != nil && t.change.fromFile:
			c.hold(rec, *ev, log)
		case res.settingsErr != nil:
			// The reload's settings were refused and the ones in force
			// stay: the module goes to admission with those.
			c.submit(ctx, rec, nil, ev)
		case res.moduleErr != nil:
			log.Error("module rejected", zap.String("digest", ev.Digest.Short()), zap.Error(res.moduleErr))
			c.fail(rec, res.moduleErr)
		default:
			stored := false
			if res.staged != nil {
				if err := res.staged.Commit(); err != nil {
					log.Warn("cannot commit the module written during its trial; storing it again", zap.Error(err))
				} else {
					stored = true
				}
				res.staged = nil
			}
			admitted = c.admitted(rec, *ev, stored, log)
		}
	}
	if changed || admitted {
		c.saveAndReconcile(ctx, rec, log)
		c.confirm(ctx, res.filter)
		c.scheduleSteps()
	}
	if admitted {
		c.prune()
	}
	for _, p := range t.reloads {
		c.settleReload(rec, p, res.settingsErr)
	}
}

// settleReload answers a filter's part of a reload: err is why the settings
// the reload gave it were refused, nil when they apply (or newer settings
// replaced them). The last part answers Reconfigure.
func (c *Controller) settleReload(rec *filterRec, p reloadPart, err error) {
	name := rec.state.Filter
	if err != nil {
		p.wait.errs = append(p.wait.errs, fmt.Errorf("filter %s keeps its previous settings: %w", name, err))
	}
	c.recordReload(rec, p.changed, err != nil)
	p.wait.left--
	if p.wait.left == 0 {
		c.answer(p.wait.reply, result{err: errors.Join(p.wait.errs...)})
	}
}

// answer publishes the status, then replies: the status is part of a
// command's answer.
func (c *Controller) answer(reply chan<- result, r result) {
	c.publish()
	reply <- r
}
