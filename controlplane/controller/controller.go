package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/secrets"
	"github.com/wasmfleet/wasmfleet/controlplane/sequence"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/store"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Config wires the controller to the stages around it.
type Config struct {
	Config   config.Config
	Store    store.Store
	Admitter admission.Admitter
	Builder  snapshot.Builder
	Cache    cache.SnapshotCache
	Fleet    fleet.Registry
	// Events come from the sources (watched directory, registries).
	Events  <-chan types.Event
	Metrics *metrics.Metrics
	Log     *zap.Logger
	// Now is the clock; nil means time.Now. Only the controller reads it:
	// the planner gets times passed in.
	Now func() time.Time
	// Unsequenced is for tests only (see controlplane.Options): each node
	// gets its target snapshot at once, RDS and ECDS together.
	Unsequenced bool
	// AdmissionWorkers is how many trial runs may run at once; zero or
	// less means one per CPU the Go runtime uses (defaultAdmissionWorkers
	// says why).
	AdmissionWorkers int
}

// Controller is the reconcile loop. One goroutine (Start) owns all mutable
// state; other goroutines talk to it through Status and Do.
type Controller struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	filters map[string]*filterRec
	// nodes are the connected nodes, each with the session (a
	// connection, fleet.NodeStatus.Session) it was seen connecting in.
	nodes map[string]uint64
	// sent remembers the snapshot versions last set per node, so a node
	// whose resources did not change is not pushed again.
	sent map[string]string
	// seq makes every change to a managed node make-before-break.
	seq   *sequence.Sequencer
	cmds  chan command
	timer *time.Timer
	// Admission (admitting.go): workers run the trials handed over on
	// jobs; queue holds the filters whose trial waits for a worker, each
	// once, so it is bounded by the number of filters.
	workers int
	runner  *trialRunner
	jobs    chan trialJob
	queue   []string
	trialID uint64

	mu     sync.RWMutex
	status []FilterStatus
}

// filterRec is the controller's view of one filter.
type filterRec struct {
	// settings hold the plugin configuration as written, $secret
	// references and all: that is what may be logged or shown. resolved
	// is the same configuration with the references read, for admission
	// and the snapshot only (served); resolveErr says why it could not
	// be read when the filter was first seen.
	settings   config.Filter
	resolved   secrets.Resolved
	resolveErr error
	state      types.FilterState
	lastError  string
	errorAt    time.Time
	// settingsErr says why the filter's NAME.yaml in the watch directory
	// was refused (it does not parse, cannot be read, or the running
	// versions refuse it). While it is set no module of the filter is
	// admitted: it could only run with settings the operator did not
	// write. held is the module event kept back meanwhile, admitted once
	// the file is fixed (the directory reports a module only once).
	settingsErr error
	held        *types.Event
	// trial is what the filter waits on admission for, nil when nothing.
	trial *trial
	// offered is the module the filter's source holds now (the last
	// module event, its bytes left out: the store has them), so that
	// clearing its bad mark can offer it again; nil once it was removed.
	offered *types.Event
	// acked holds the connected nodes known to run the candidate, so
	// confirming a rollout costs O(1) per ACK rather than a walk over the
	// fleet; failed holds the nodes that failed to load it.
	acked, failed candidateNodes
}

// candidateNodes is a set of nodes counted for one candidate version.
type candidateNodes struct {
	of    types.Digest
	nodes map[string]bool
}

// forCandidate returns the set for the filter's current candidate, emptied
// whenever the candidate changes (a new version, a promotion, a rollback).
func (s *candidateNodes) forCandidate(r *filterRec) map[string]bool {
	if s.of != r.state.Candidate || s.nodes == nil {
		s.of, s.nodes = r.state.Candidate, map[string]bool{}
	}
	return s.nodes
}

// served is settings as admission and Envoy get them: secrets resolved.
func (r *filterRec) served() config.Filter {
	f := r.settings
	f.Config = r.resolved.Config
	return f
}

// ackedCandidate returns the nodes that ACKed the current candidate.
func (r *filterRec) ackedCandidate() map[string]bool { return r.acked.forCandidate(r) }

// New loads the persisted state of every filter from the store, so the first
// snapshot after a restart equals the last one before it.
func New(cfg Config) (*Controller, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Controller{
		cfg:     cfg,
		log:     cfg.Log.Named("controller"),
		now:     cfg.Now,
		filters: map[string]*filterRec{},
		nodes:   map[string]uint64{},
		sent:    map[string]string{},
		seq:     sequence.New(),
		cmds:    make(chan command),
		workers: cfg.AdmissionWorkers,
		runner:  &trialRunner{admitter: cfg.Admitter, store: cfg.Store, metrics: cfg.Metrics},
		jobs:    make(chan trialJob),
	}
	if c.workers <= 0 {
		c.workers = defaultAdmissionWorkers()
	}
	// A secret the config file names but the control plane cannot read
	// is refused at start, like any other bad config.
	var errs []error
	for _, f := range cfg.Config.Filters {
		if _, err := secrets.Resolve(f.Config); err != nil {
			errs = append(errs, fmt.Errorf("filter %s: %w", f.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("controller: %w", errors.Join(errs...))
	}
	names, err := cfg.Store.Filters()
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	for _, name := range names {
		st, ok, err := cfg.Store.State(name)
		if err != nil {
			return nil, fmt.Errorf("controller: %s: %w", name, err)
		}
		if !ok {
			continue
		}
		rec := c.filter(name)
		rec.state = st
		if len(st.Settings) > 0 {
			s, err := c.parseSettings(name, st.Settings)
			var res secrets.Resolved
			if err == nil {
				res, err = resolve(c.settingsFile(name), s)
			}
			if err != nil {
				c.log.Error("persisted settings no longer valid; using the config file's", zap.String("filter", name), zap.Error(err))
			} else {
				rec.settings, rec.resolved, rec.resolveErr = s, res, nil
			}
		}
	}
	c.publish()
	return c, nil
}

// Start runs the loop until ctx ends, then cancels the trial runs under way
// and returns once their workers have stopped.
func (c *Controller) Start(ctx context.Context) error {
	results := make(chan trialResult)
	defer c.startWorkers(ctx, results)()
	fleetEvents := c.cfg.Fleet.Subscribe(ctx)
	// Nodes that connected before the subscription existed published their
	// events to nobody: take them from the registry's state.
	for _, n := range c.cfg.Fleet.Nodes() {
		c.adopt(n)
	}
	c.reconcile(ctx)
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	c.scheduleSteps()
	for {
		jobs, job := c.nextJob()
		select {
		case <-ctx.Done():
			c.timer.Stop()
			return nil
		case jobs <- job:
			c.dispatched()
			continue
		case res := <-results:
			c.trialDone(ctx, res)
		case ev := <-c.cfg.Events:
			c.handleSource(ctx, ev)
		case ev, ok := <-fleetEvents:
			if !ok {
				fleetEvents = nil
				continue
			}
			c.handleFleet(ctx, ev)
		case <-c.timer.C:
			c.advanceSteps(ctx)
		case cmd := <-c.cmds:
			c.handleCommand(ctx, cmd) // it answers, now or once its trials are done
			continue
		}
		c.publish()
	}
}

func (c *Controller) filter(name string) *filterRec {
	rec, ok := c.filters[name]
	if !ok {
		settings, _ := c.cfg.Config.FilterByName(name)
		rec = &filterRec{settings: settings, state: types.FilterState{Filter: name}}
		rec.resolved, rec.resolveErr = resolve("config", settings)
		c.filters[name] = rec
	}
	return rec
}

// fail records err as the filter's last error. While the filter's settings
// file is refused, that stays in the error too: it holds back every module
// until the file is fixed, whatever else goes wrong meanwhile.
func (c *Controller) fail(rec *filterRec, err error) {
	if rec.settingsErr != nil && !errors.Is(err, rec.settingsErr) {
		err = fmt.Errorf("%w; and still: %w", err, rec.settingsErr)
	}
	rec.lastError = err.Error()
	rec.errorAt = c.now()
}

// reconfigure applies a new config file and answers reply. Fields that need
// new sockets or directories (listen.*, watch_dir, data_dir, mode, limits)
// keep their running values until a restart, and say so; everything else
// applies now, except settings that must pass a trial run first: those
// apply when it passes, and the answer waits for them, listing the filters
// whose new settings the running modules refused (they keep the previous
// ones). The trials run on the admission workers, the loop goes on.
func (c *Controller) reconfigure(ctx context.Context, next config.Config, reply chan<- result) {
	cur := c.cfg.Config
	var restart []string
	if next.Listen != cur.Listen {
		restart = append(restart, "listen")
	}
	if next.WatchDir != cur.WatchDir {
		restart = append(restart, "watch_dir")
	}
	if next.DataDir != cur.DataDir {
		restart = append(restart, "data_dir")
	}
	if next.Mode != cur.Mode {
		restart = append(restart, "mode")
	}
	if next.Limits != cur.Limits {
		restart = append(restart, "limits")
	}
	if !slices.Equal(next.Trust.Keys, cur.Trust.Keys) || next.Trust.RequireSignature != cur.Trust.RequireSignature {
		restart = append(restart, "trust") // the verifier is built at start
	}
	if next.ModuleBaseURL == "" {
		next.ModuleBaseURL = cur.ModuleBaseURL
	}
	next.Listen, next.WatchDir, next.DataDir, next.Mode, next.Limits, next.Trust = cur.Listen, cur.WatchDir, cur.DataDir, cur.Mode, cur.Limits, cur.Trust
	c.cfg.Config = next
	wait := &reloadWait{reply: reply, left: 1} // 1: this call, until its loop is over
	for name, rec := range c.filters {
		c.reloadFilter(ctx, rec, reloadPart{wait: wait, changed: entryChanges(cur, next, name)})
	}
	if len(restart) > 0 {
		c.log.Warn("config reloaded; some fields apply only after a restart", zap.Strings("fields", restart))
	}
	c.log.Info("config reloaded")
	c.reconcile(ctx)
	for name := range c.filters {
		c.confirm(ctx, name)
	}
	c.scheduleSteps()
	if wait.left--; wait.left == 0 {
		c.answer(reply, result{err: errors.Join(wait.errs...)})
	}
}

// reloadFilter gives one filter its settings under the reloaded config
// file: its NAME.yaml (the one on trial, if any, else the one in force)
// over its new entry. A module waiting on admission that the reload took
// from the filter's source is dropped; one still its own is tried with the
// settings the filter ends up with.
func (c *Controller) reloadFilter(ctx context.Context, rec *filterRec, part reloadPart) {
	name := rec.state.Filter
	log := c.log.With(zap.String("filter", name))
	pending, module := rec.pending()
	if module != nil {
		if err := c.checkOwner(*module); err != nil {
			log.Error("module waiting on admission dropped: the reload gave the filter another source", zap.Error(err))
			c.fail(rec, err)
			module = nil
		}
	}
	raw, file, fromFile := rec.state.Settings, "config", false
	if pending != nil && pending.fromFile {
		raw, file, fromFile = pending.raw, pending.file, true
	}
	change, err := c.newSettings(name, raw, file, fromFile)
	switch {
	case err != nil:
		if fromFile {
			c.submit(ctx, rec, nil, module)
			c.refuseFile(ctx, rec, err, log)
		} else {
			c.fail(rec, err)
			c.submit(ctx, rec, nil, module)
		}
		part.wait.left++
		c.settleReload(rec, part, err)
	case c.needsTrial(rec, change):
		part.wait.left++
		c.submit(ctx, rec, change, module, part)
	default:
		c.adoptSettings(rec, change, log)
		c.save(rec, log)
		c.submit(ctx, rec, nil, module)
		c.recordReload(rec, part.changed, false)
	}
}

// recordReload adds a reload that changed the filter's entry (changed says
// what) to the filter's history of actions.
func (c *Controller) recordReload(rec *filterRec, changed []string, refused bool) {
	if len(changed) == 0 {
		return
	}
	act := store.Action{Filter: rec.state.Filter, Action: string(Reload), Actor: ReloadActor, At: c.now(),
		Reason: "the config file changed its " + strings.Join(changed, ", ")}
	if refused {
		act.Reason += "; its settings were refused"
	}
	c.record(rec, act, c.log.With(zap.String("filter", rec.state.Filter)))
}

// entryChanges names what differs between filter name's entries in two
// config files: the entry as a whole when only one has it, else its fields
// as the file spells them and its place in the filter order.
func entryChanges(cur, next config.Config, name string) []string {
	a, inCur := cur.FilterByName(name)
	b, inNext := next.FilterByName(name)
	if inCur != inNext {
		return []string{"entry"}
	}
	var changed []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			tag, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("json"), ",")
			changed = append(changed, tag)
		}
	}
	at := func(c config.Config) int {
		return slices.IndexFunc(c.Filters, func(f config.Filter) bool { return f.Name == name })
	}
	if at(cur) != at(next) {
		changed = append(changed, "position")
	}
	return changed
}

func (c *Controller) saveAndReconcile(ctx context.Context, rec *filterRec, log *zap.Logger) {
	c.save(rec, log)
	c.reconcile(ctx)
}

// save persists the filter's state.
func (c *Controller) save(rec *filterRec, log *zap.Logger) {
	if err := c.cfg.Store.SetState(rec.state); err != nil {
		log.Error("cannot persist filter state", zap.Error(err))
		c.fail(rec, err)
	}
}

// chain returns the planner inputs and snapshot settings in chain order.
// The snapshot settings hold resolved secrets: they go to the builder only.
func (c *Controller) chain() ([]rollout.FilterInput, []config.Filter) {
	order := c.order()
	inputs := make([]rollout.FilterInput, 0, len(order))
	settings := make([]config.Filter, 0, len(order))
	for _, name := range order {
		rec := c.filters[name]
		inputs = append(inputs, rollout.FilterInput{Spec: rec.settings, State: rec.state, Failed: rec.failed.forCandidate(rec)})
		settings = append(settings, rec.served())
	}
	return inputs, settings
}

// order names the filters that have a version, in chain order.
func (c *Controller) order() []string {
	var present []string
	for name, rec := range c.filters {
		if rec.state.Stable != "" || rec.state.Candidate != "" {
			present = append(present, name)
		}
	}
	return c.cfg.Config.FilterOrder(present)
}

func (c *Controller) snapshotInput(settings []config.Filter) snapshot.Input {
	return snapshot.Input{
		Mode:      c.cfg.Config.Mode,
		Managed:   c.cfg.Config.Managed,
		ModuleURL: c.cfg.Config.ModuleURL(),
		Filters:   settings,
		Inline:    c.inline,
	}
}

func (c *Controller) inline(d types.Digest) ([]byte, error) {
	b, ok, err := c.cfg.Store.Module(d)
	if err == nil && !ok {
		err = fmt.Errorf("module %s is not in the store", d)
	}
	return b, err
}

// reconcile plans the fleet (or just the named nodes) and sets a snapshot for
// every node whose resources changed.
func (c *Controller) reconcile(ctx context.Context, only ...string) {
	start := c.now()
	nodes := only
	if len(nodes) == 0 {
		nodes = make([]string, 0, len(c.nodes))
		for n := range c.nodes {
			nodes = append(nodes, n)
		}
	}
	inputs, settings := c.chain()
	plan := rollout.Plan(inputs, nodes)
	in := c.snapshotInput(settings)
	nb, err := c.cfg.Builder.For(in)
	if err != nil {
		c.log.Error("cannot build snapshots", zap.Error(err))
		return
	}
	// Every node's wants name the same few configs: each key is hashed
	// once per reconcile, not once per node (reconcile-mean-ms of
	// BenchmarkFleetConvergenceRemote/nodes=10000 in e2e/scale: 950 ms
	// before, 822-876 ms after). settings and in are fixed here, so a
	// filter's name and module identify its config.
	keys := map[filterModule]string{}
	key := func(f config.Filter, d types.Digest) string {
		fm := filterModule{f.Name, d}
		k, ok := keys[fm]
		if !ok {
			k = snapshot.ConfigKey(in, f, d)
			keys[fm] = k
		}
		return k
	}
	for _, node := range nodes {
		a := plan[node]
		snap, step, err := c.nodeSnapshot(nb, node, a, settings, key)
		if err != nil {
			c.log.Error("cannot build snapshot", zap.String("node", node), zap.Error(err))
			continue
		}
		if snap == nil {
			continue // the sequencer waits for the node to report what it runs
		}
		versions := snapshotKey(snap)
		if c.sent[node] == versions {
			continue
		}
		// Record the assignment before the snapshot can reach the node:
		// SetSnapshot answers open watches at once, and an ACK that arrives
		// before Assigned could not be resolved to its modules. Every ECDS
		// version the sequencer sends holds the assignment's modules.
		c.cfg.Fleet.Assigned(node, snap.GetVersion(resourcev3.ExtensionConfigType), a)
		if err := c.cfg.Cache.SetSnapshot(ctx, node, snap); err != nil {
			c.log.Error("cannot set snapshot", zap.String("node", node), zap.Error(err))
			continue
		}
		if step != nil {
			c.seq.Sent(node, *step)
		}
		c.sent[node] = versions
		c.cfg.Metrics.SnapshotPushes.Inc()
	}
	if len(only) == 0 {
		// The metric is the fleet-wide reconcile; one node's (on its
		// connect or answers) is a small part of the same work.
		c.cfg.Metrics.SnapshotBuildSeconds.Observe(time.Since(start).Seconds())
	}
}

// filterModule is a filter running a module.
type filterModule struct {
	filter string
	module types.Digest
}

// nodeSnapshot builds what node may be sent now: in managed mode what the
// sequencer allows (nil while it waits for the node's reports), otherwise
// (ECDS-only mode, or the test-only unsequenced mode) the target at once.
func (c *Controller) nodeSnapshot(nb snapshot.NodeBuilder, node string, a types.Assignment, settings []config.Filter, key sequence.KeyFunc) (*cache.Snapshot, *sequence.Step, error) {
	if c.cfg.Config.Mode == config.ModeECDS || c.cfg.Unsequenced {
		snap, err := nb.Build(a)
		return snap, nil, err
	}
	step, ok, err := c.seq.Next(node, c.cfg.Config.Managed.FilterSlots, sequence.Wants(settings, a, key))
	if err != nil || !ok {
		return nil, nil, err
	}
	snap, err := nb.BuildLayout(step.Layout)
	return snap, &step, err
}

func snapshotKey(s *cache.Snapshot) string {
	var key string
	for _, t := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.ExtensionConfigType} {
		key += s.GetVersion(t) + "/"
	}
	return key
}
