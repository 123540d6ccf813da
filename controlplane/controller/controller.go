package controller

import (
	"context"
	"errors"
	"fmt"
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
}

// Controller is the reconcile loop. One goroutine (Start) owns all mutable
// state; other goroutines talk to it through Status and Do.
type Controller struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	filters map[string]*filterRec
	nodes   map[string]bool
	// sent remembers the snapshot versions last set per node, so a node
	// whose resources did not change is not pushed again.
	sent map[string]string
	// seq makes every change to a managed node make-before-break.
	seq   *sequence.Sequencer
	cmds  chan command
	timer *time.Timer

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
		nodes:   map[string]bool{},
		sent:    map[string]string{},
		seq:     sequence.New(),
		cmds:    make(chan command),
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

// Start runs the loop until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	fleetEvents := c.cfg.Fleet.Subscribe(ctx)
	// Nodes that connected before the subscription existed published their
	// events to nobody: take them from the registry's state.
	for _, n := range c.cfg.Fleet.Nodes() {
		c.markConnected(n.ID)
		for _, ts := range n.Types {
			c.answered(fleet.Event{Kind: fleet.Answered, Node: n.ID, TypeURL: ts.TypeURL, Version: ts.AckedVersion, Report: true})
		}
	}
	c.reconcile(ctx)
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
	c.scheduleSteps()
	for {
		select {
		case <-ctx.Done():
			c.timer.Stop()
			return nil
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
			cmd.reply <- c.handleCommand(ctx, cmd)
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

// resolve reads the secrets f's plugin configuration refers to; file names
// where the settings come from in errors.
func resolve(file string, f config.Filter) (secrets.Resolved, error) {
	r, err := secrets.Resolve(f.Config)
	if err != nil {
		return secrets.Resolved{}, fmt.Errorf("%s: filter %s: %w", file, f.Name, err)
	}
	return r, nil
}

func (c *Controller) parseSettings(name string, raw []byte) (config.Filter, error) {
	base, _ := c.cfg.Config.FilterByName(name)
	if len(raw) == 0 {
		return base, nil
	}
	f, err := config.ParseFilterSettings(c.settingsFile(name), base, raw)
	if err != nil {
		return config.Filter{}, err
	}
	if err := allowedSecrets(c.settingsFile(name), base, f); err != nil {
		return config.Filter{}, err
	}
	return f.WithDefaults(), nil
}

// ErrSecretNotInConfig refuses a settings file in the watch directory that
// refers to a secret the config file does not name for its filter.
var ErrSecretNotInConfig = errors.New("a settings file in the watch directory may only refer to secrets that the config file names for its filter")

// allowedSecrets checks the $secret references of f, read from file in the
// watch directory over base, the config file's entry: whoever may write
// there must not get the control plane to read any file or variable it can
// and send it to the fleet (as for symlinks, limits.follow_outside_symlinks),
// so the config file's references are the ones allowed.
func allowedSecrets(file string, base, f config.Filter) error {
	refs, err := secrets.Refs(f.Config)
	if err != nil || len(refs) == 0 {
		return nil // Resolve reports malformed references
	}
	allowed := map[secrets.Source]bool{}
	baseRefs, _ := secrets.Refs(base.Config)
	for _, r := range baseRefs {
		allowed[r.Source] = true
	}
	var errs []error
	for _, r := range refs {
		if !allowed[r.Source] {
			errs = append(errs, fmt.Errorf("%s: filter %s: %s: $secret %s: %w", file, f.Name, r.Path, r.Source, ErrSecretNotInConfig))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) settingsFile(name string) string {
	return c.cfg.Config.WatchDir + "/" + name + ".yaml"
}

func (c *Controller) fail(rec *filterRec, err error) {
	rec.lastError = err.Error()
	rec.errorAt = c.now()
}

func (c *Controller) handleSource(ctx context.Context, ev types.Event) {
	log := c.log.With(zap.String("filter", ev.Filter), zap.String("source", ev.Origin.Ref))
	switch ev.Kind {
	case types.ModuleChanged:
		c.moduleChanged(ctx, ev, log)
	case types.ModuleRemoved:
		rec := c.filter(ev.Filter)
		if rec.settings.Required {
			err := fmt.Errorf("%s: module removed, but the filter is required: keeping %s", ev.Origin.Ref, rec.state.Stable.Short())
			log.Error("required filter's module removed; keeping its last good version", zap.String("version", rec.state.Stable.Short()))
			c.fail(rec, err)
			return
		}
		rec.state = rollout.Removed(rec.state)
		c.saveAndReconcile(ctx, rec, log)
		log.Info("filter retired: its module was removed")
	case types.SettingsChanged:
		c.settingsChanged(ctx, ev, log)
	case types.SourceFailed:
		log.Error("source could not read a file", zap.Error(ev.Err))
		if ev.Filter != "" {
			c.fail(c.filter(ev.Filter), ev.Err)
		}
	}
}

func (c *Controller) moduleChanged(ctx context.Context, ev types.Event, log *zap.Logger) {
	rec := c.filter(ev.Filter)
	st := &rec.state
	if ev.Digest == st.Stable || ev.Digest == st.Candidate {
		if st.Retired {
			st.Retired = false
			c.saveAndReconcile(ctx, rec, log)
		}
		return
	}
	if slices.ContainsFunc(st.Bad, func(b types.BadMark) bool { return b.Digest == ev.Digest }) {
		err := fmt.Errorf("%s: version %s was rolled back earlier and is marked bad; clear it with `wasmfleet rollout clear-bad %s %s` to roll it out again",
			ev.Origin.Ref, ev.Digest.Short(), ev.Filter, ev.Digest)
		log.Warn("module ignored: version marked bad", zap.String("digest", ev.Digest.Short()))
		c.fail(rec, err)
		return
	}
	if rec.resolveErr != nil {
		// The secret may have appeared since the filter was first seen.
		rec.resolved, rec.resolveErr = resolve("config", rec.settings)
	}
	if rec.resolveErr != nil {
		err := fmt.Errorf("%s: not admitted: %w", ev.Origin.Ref, rec.resolveErr)
		log.Error("module not admitted: its filter's secrets cannot be read", zap.String("digest", ev.Digest.Short()), zap.Error(err))
		c.fail(rec, err)
		return
	}
	if _, err := c.admit(ctx, ev.Origin.Ref, ev.Module, ev.Digest, ev.Signature, rec.settings, rec.resolved); err != nil {
		log.Error("module rejected", zap.String("digest", ev.Digest.Short()), zap.Error(err))
		c.fail(rec, err)
		return
	}
	if _, err := c.cfg.Store.PutModule(ev.Module); err != nil {
		log.Error("cannot store module", zap.Error(err))
		c.fail(rec, err)
		return
	}
	v := types.Version{Filter: ev.Filter, Digest: ev.Digest, Size: int64(len(ev.Module)), Origin: ev.Origin, AddedAt: c.now(), Manifest: ev.Manifest}
	if err := c.cfg.Store.AddVersion(v); err != nil {
		log.Error("cannot record version", zap.Error(err))
		c.fail(rec, err)
		return
	}
	next, decision := rollout.Admitted(rec.settings, rec.state, ev.Digest, c.now())
	rec.state = next
	rec.lastError = ""
	log.Info("module admitted", zap.String("digest", ev.Digest.Short()), zap.Stringer("decision", decision))
	c.saveAndReconcile(ctx, rec, log)
	c.scheduleSteps()
}

// admit runs admission with settings' secrets resolved as res says, and
// records the outcome in metrics. The error holds none of the secrets.
func (c *Controller) admit(ctx context.Context, file string, module []byte, d types.Digest, sig []byte, settings config.Filter, res secrets.Resolved) (admission.Report, error) {
	start := c.now()
	served := settings
	served.Config = res.Config
	rep, err := c.cfg.Admitter.Admit(ctx, admission.Request{
		File: file, Filter: settings.Name, Module: module, Digest: d, Settings: served, Signature: sig,
		Redact: res.Redact,
	})
	err = res.RedactError(err) // whatever the admitter is
	c.cfg.Metrics.AdmissionSeconds.WithLabelValues(settings.Name).Observe(time.Since(start).Seconds())
	result := "admitted"
	if err != nil {
		result = "rejected"
	}
	c.cfg.Metrics.Admissions.WithLabelValues(settings.Name, result).Inc()
	return rep, err
}

// settingsChanged applies a new NAME.yaml.
func (c *Controller) settingsChanged(ctx context.Context, ev types.Event, log *zap.Logger) {
	rec := c.filter(ev.Filter)
	next, err := c.parseSettings(ev.Filter, ev.Settings)
	if err == nil {
		err = c.applySettings(ctx, rec, next, c.settingsFile(ev.Filter))
	}
	if err != nil {
		log.Error("filter settings refused", zap.Error(err))
		c.fail(rec, err)
		return
	}
	rec.state.Settings = ev.Settings
	rec.lastError = ""
	log.Info("filter settings applied")
	c.saveAndReconcile(ctx, rec, log)
	c.scheduleSteps()
}

// applySettings makes next the filter's settings, but only if every version
// the fleet may run (stable and candidate) still passes admission with it: a
// plugin configuration that makes the running module fail proxy_on_configure
// would otherwise be NACKed fleet-wide. file names the source of the settings
// in errors. It does not reconcile.
//
// The secrets next refers to are read now: this is when a changed secret
// file reaches the fleet.
func (c *Controller) applySettings(ctx context.Context, rec *filterRec, next config.Filter, file string) error {
	res, err := resolve(file, next)
	if err != nil {
		return err
	}
	nextServed := next
	nextServed.Config = res.Config
	if rec.resolveErr == nil && sameTrialInputs(rec.served(), nextServed) {
		rec.settings, rec.resolved = next, res
		return nil
	}
	for _, d := range []types.Digest{rec.state.Stable, rec.state.Candidate} {
		if d == "" {
			continue
		}
		module, ok, err := c.cfg.Store.Module(d)
		if err != nil || !ok {
			return errors.Join(fmt.Errorf("%s: module %s is missing from the store", file, d.Short()), err)
		}
		if _, err := c.admit(ctx, file, module, d, nil, next, res); err != nil {
			return fmt.Errorf("%s: version %s does not accept these settings: %w", file, d.Short(), err)
		}
	}
	rec.settings, rec.resolved, rec.resolveErr = next, res, nil
	return nil
}

// sameTrialInputs reports whether admission would see the same thing: only
// the plugin configuration (secrets resolved), root id and signature policy
// feed it.
func sameTrialInputs(a, b config.Filter) bool {
	return string(a.Config) == string(b.Config) && a.RootID == b.RootID && a.RequireSignature == b.RequireSignature
}

// reconfigure applies a new config file. Fields that need new sockets or
// directories (listen.*, watch_dir, data_dir, mode, limits) keep their
// running values until a restart, and say so; everything else applies now.
func (c *Controller) reconfigure(ctx context.Context, next config.Config) error {
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
	var errs []error
	for name, rec := range c.filters {
		settings, err := c.parseSettings(name, rec.state.Settings)
		if err == nil {
			err = c.applySettings(ctx, rec, settings, "config")
		}
		if err != nil {
			c.fail(rec, err)
			errs = append(errs, fmt.Errorf("filter %s keeps its previous settings: %w", name, err))
		}
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
	return errors.Join(errs...)
}

func (c *Controller) handleFleet(ctx context.Context, ev fleet.Event) {
	switch ev.Kind {
	case fleet.NodeConnected:
		c.markConnected(ev.Node)
		c.reconcile(ctx, ev.Node)
	case fleet.Answered:
		if c.answered(ev) {
			c.reconcile(ctx, ev.Node)
		}
	case fleet.NodeDisconnected:
		delete(c.nodes, ev.Node)
		delete(c.sent, ev.Node)
		c.seq.Forget(ev.Node)
		c.cfg.Cache.ClearSnapshot(ev.Node)
		c.cfg.Metrics.ConnectedNodes.Set(float64(len(c.nodes)))
		// The node that left may have been the last one yet to ACK.
		for name, rec := range c.filters {
			delete(rec.ackedCandidate(), ev.Node)
			c.confirm(ctx, name)
		}
	case fleet.Acked:
		c.cfg.Metrics.Acks.WithLabelValues("ecds").Inc()
		// A node that failed this candidate is kept on stable and settled
		// as failed; nothing it ACKs of the candidate later counts.
		if rec, ok := c.filters[ev.Filter]; ok && ev.Digest != "" && ev.Digest == rec.state.Candidate && c.nodes[ev.Node] &&
			!rec.failed.forCandidate(rec)[ev.Node] {
			rec.ackedCandidate()[ev.Node] = true
			c.confirm(ctx, ev.Filter)
		}
	case fleet.Nacked:
		c.cfg.Metrics.Nacks.WithLabelValues("ecds").Inc()
		c.nacked(ctx, ev)
	}
}

// confirm promotes a filter's candidate once it runs at 100%, at least one
// node has ACKed it and every other connected node has ACKed it or failed
// it within max_failed_nodes: only then is there no node left that could
// still reject it, so the previous stable version can be let go. Nodes that
// failed it are then sent the new stable version, which they will likely
// reject again and keep running what they ran; the filter's last error
// names them.
func (c *Controller) confirm(ctx context.Context, filter string) {
	rec, ok := c.filters[filter]
	if !ok || rec.state.Candidate == "" || len(c.nodes) == 0 || len(rec.ackedCandidate()) == 0 {
		return
	}
	acked := len(rec.ackedCandidate()) // connected nodes only
	settled := acked
	var failed []string
	for n := range rec.failed.forCandidate(rec) {
		if c.nodes[n] {
			settled++
			failed = append(failed, n)
		}
	}
	if settled < len(c.nodes) {
		return
	}
	d := rec.state.Candidate
	next, promoted := rollout.Confirmed(rec.settings, rec.state, d)
	if !promoted {
		return
	}
	rec.state = next
	log := c.log.With(zap.String("filter", filter))
	log.Info("candidate promoted to stable", zap.String("version", d.Short()),
		zap.Int("acked", acked), zap.Int("failed", len(failed)))
	if len(failed) > 0 {
		slices.Sort(failed)
		c.fail(rec, fmt.Errorf("version %s promoted although nodes %s failed to load it (within max_failed_nodes)", d.Short(), strings.Join(failed, ", ")))
	}
	c.saveAndReconcile(ctx, rec, log)
}

// markConnected records a node with an open stream. A node that reconnects
// reports the versions it already runs, which the registry records without
// an Acked event: those count toward confirming a candidate here.
func (c *Controller) markConnected(node string) {
	c.nodes[node] = true
	c.seq.Connected(node)
	c.cfg.Metrics.ConnectedNodes.Set(float64(len(c.nodes)))
	for name, rec := range c.filters {
		if d := rec.state.Candidate; d != "" && c.nodeRuns(node, name, d) && !rec.failed.forCandidate(rec)[node] {
			rec.ackedCandidate()[node] = true
		}
	}
}

// nodeRuns reports whether node has ACKed an ECDS version running d for filter.
func (c *Controller) nodeRuns(node, filter string, d types.Digest) bool {
	st, ok := c.cfg.Fleet.Node(node)
	if !ok {
		return false
	}
	for _, f := range st.Filters {
		if f.Filter == filter {
			return f.Acked.Stable == d || f.Acked.Candidate == d
		}
	}
	return false
}

// nacked rolls a candidate back when nodes fail to load it.
func (c *Controller) nacked(ctx context.Context, ev fleet.Event) {
	rec, ok := c.filters[ev.Filter]
	if !ok || ev.Digest == "" || ev.Digest != rec.state.Candidate {
		return
	}
	failed := rec.failed.forCandidate(rec)
	failed[ev.Node] = true
	delete(rec.ackedCandidate(), ev.Node)
	ev.Reason = rec.resolved.Redact(ev.Reason) // a node may echo its configuration
	mark := types.BadMark{Digest: ev.Digest, Node: ev.Node, Reason: ev.Reason, At: c.now()}
	next, rolledBack := rollout.Failed(rec.settings, rec.state, mark, len(failed))
	if !rolledBack {
		// Tolerated (max_failed_nodes): the node goes back to stable (the
		// planner keeps failed nodes there) and no longer holds up promotion.
		c.log.Warn("node failed to load the candidate; within max_failed_nodes",
			zap.String("filter", ev.Filter), zap.String("node", ev.Node), zap.String("digest", ev.Digest.Short()), zap.String("reason", ev.Reason))
		c.reconcile(ctx, ev.Node)
		c.confirm(ctx, ev.Filter)
		return
	}
	rec.state = next
	c.cfg.Metrics.Rollbacks.WithLabelValues(ev.Filter, "nack").Inc()
	log := c.log.With(zap.String("filter", ev.Filter), zap.String("node", ev.Node), zap.String("digest", ev.Digest.Short()))
	log.Error("candidate rolled back: a node failed to load it", zap.String("reason", ev.Reason))
	c.fail(rec, fmt.Errorf("version %s rolled back: node %s: %s", ev.Digest.Short(), ev.Node, ev.Reason))
	c.saveAndReconcile(ctx, rec, log)
}

func (c *Controller) saveAndReconcile(ctx context.Context, rec *filterRec, log *zap.Logger) {
	if err := c.cfg.Store.SetState(rec.state); err != nil {
		log.Error("cannot persist filter state", zap.Error(err))
		c.fail(rec, err)
	}
	c.reconcile(ctx)
}

// chain returns the planner inputs and snapshot settings in chain order.
// The snapshot settings hold resolved secrets: they go to the builder only.
func (c *Controller) chain() ([]rollout.FilterInput, []config.Filter) {
	var present []string
	for name, rec := range c.filters {
		if rec.state.Stable != "" || rec.state.Candidate != "" {
			present = append(present, name)
		}
	}
	var inputs []rollout.FilterInput
	var settings []config.Filter
	for _, name := range c.cfg.Config.FilterOrder(present) {
		rec := c.filters[name]
		inputs = append(inputs, rollout.FilterInput{Spec: rec.settings, State: rec.state, Failed: rec.failed.forCandidate(rec)})
		settings = append(settings, rec.served())
	}
	return inputs, settings
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
	key := func(f config.Filter, d types.Digest) string { return snapshot.ConfigKey(in, f, d) }
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

// answered feeds a node's answer (or report) about its listeners, routes
// or filter slots to the sequencer, decoding what it runs from the version.
// It reports whether the node may now be sent something new.
func (c *Controller) answered(ev fleet.Event) bool {
	if c.cfg.Config.Mode == config.ModeECDS || c.cfg.Unsequenced {
		return false
	}
	var kind sequence.Kind
	var routes []types.Link
	var slots []string
	ok := true
	switch ev.TypeURL {
	case resourcev3.ListenerType:
		kind = sequence.Listeners
	case resourcev3.RouteType:
		kind = sequence.Routes
		routes, ok = snapshot.ParseRoutes(ev.Version)
	case resourcev3.ExtensionConfigType:
		kind = sequence.Slots
		slots, ok = snapshot.ParseSlots(ev.Version)
	default:
		return false
	}
	if ev.Report {
		if ev.Version != "" && !ok && kind != sequence.Listeners {
			c.log.Warn("node reports a version this control plane cannot read; treating its routes and slots as unknown",
				zap.String("node", ev.Node), zap.String("type", ev.TypeURL), zap.String("version", ev.Version))
		}
		return c.seq.Reported(ev.Node, kind, ev.Version, routes, slots, ok)
	}
	if !ok {
		return false
	}
	switch kind {
	case sequence.Routes:
		c.seq.AnsweredRoutes(ev.Node, routes, ev.NACK)
	case sequence.Slots:
		c.seq.AnsweredSlots(ev.Node, slots, ev.NACK)
	default:
		return false
	}
	return true
}

func snapshotKey(s *cache.Snapshot) string {
	var key string
	for _, t := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.ExtensionConfigType} {
		key += s.GetVersion(t) + "/"
	}
	return key
}
