package controller

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/secrets"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

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
	if f.Source != base.Source {
		return config.Filter{}, fmt.Errorf("%s: filter %s: source: %w: only the config file sets a filter's source (%q there)", c.settingsFile(name), name, ErrSourceInSettings, base.Source)
	}
	if err := allowedSecrets(c.settingsFile(name), base, f); err != nil {
		return config.Filter{}, err
	}
	return f.WithDefaults(), nil
}

// ErrSourceInSettings refuses a settings file in the watch directory that
// changes its filter's source: each filter has one owning source, and
// whoever may write to the directory must not be able to take a filter
// from its registry (or hand it to one).
var ErrSourceInSettings = errors.New("a settings file in the watch directory cannot change the filter's source")

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

func (c *Controller) handleSource(ctx context.Context, ev types.Event) {
	log := c.log.With(zap.String("filter", ev.Filter), zap.String("source", ev.Origin.Ref))
	if err := c.checkOwner(ev); err != nil {
		log.Error("event refused: it does not come from the filter's source", zap.Stringer("event", ev.Kind), zap.Error(err))
		c.fail(c.filter(ev.Filter), err)
		return
	}
	switch ev.Kind {
	case types.ModuleChanged:
		offered := ev
		offered.Module = nil
		c.filter(ev.Filter).offered = &offered
		c.moduleChanged(ctx, ev, log)
	case types.ModuleRemoved:
		rec := c.filter(ev.Filter)
		change, _ := rec.pending()
		c.submit(ctx, rec, change, nil) // the module waiting on admission is gone from its source
		rec.held, rec.offered = nil, nil
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
		if ev.Filter == "" {
			return
		}
		rec := c.filter(ev.Filter)
		if c.isSettingsFile(ev) {
			// The file is there but unusable: as for one that does not
			// parse, the module must wait for it.
			c.refuseFile(ctx, rec, ev.Err, log)
			return
		}
		c.fail(rec, ev.Err)
	}
}

// ErrNotOwner refuses an event about a filter from a source other than the
// filter's own.
var ErrNotOwner = errors.New("not the filter's source")

// checkOwner refuses a module event (changed, removed, unreadable) that does
// not come from the filter's one owning source: the registry reference the
// config file gives as its source, or else the watch directory. A stray
// filters.d/auth.wasm must neither replace nor retire an auth filter pulled
// from a registry, nor a registry poller still running after a reload move
// a filter that now lives in the directory. Settings files (NAME.yaml) are
// not module sources and apply to every filter.
func (c *Controller) checkOwner(ev types.Event) error {
	if ev.Filter == "" || ev.Kind == types.SettingsChanged || c.isSettingsFile(ev) {
		return nil
	}
	spec, _ := c.cfg.Config.FilterByName(ev.Filter)
	owner := "the watch directory (" + c.cfg.Config.WatchDir + "/" + ev.Filter + ".wasm)"
	owned := ev.Origin.Kind == types.OriginFile
	if spec.Source != "" {
		owner = spec.Source
		owned = ev.Origin.Kind == types.OriginOCI && sameArtifact(spec.Source, ev.Origin.Ref)
	}
	if owned {
		return nil
	}
	return fmt.Errorf("%s: filter %s: %w, which is %s: %s refused", ev.Origin.Ref, ev.Filter, ErrNotOwner, owner, ev.Kind)
}

// sameArtifact reports whether ref, as a registry source reports it (pinned
// to the digest it resolved, or as configured), is configured's artifact:
// the same repository, and the same digest when configured pins one. A tag
// names no digest, so any digest of the repository may be its.
func sameArtifact(configured, ref string) bool {
	want, err := ociartifact.ParseRef(configured)
	if err != nil {
		return false
	}
	got, err := ociartifact.ParseRef(ref)
	if err != nil {
		return false
	}
	return got.Registry == want.Registry && got.Repository == want.Repository && (want.Digest == "" || got.Digest == want.Digest)
}

// isSettingsFile reports whether ev is about the filter's NAME.yaml in the
// watch directory.
func (c *Controller) isSettingsFile(ev types.Event) bool {
	return ev.Origin.Kind == types.OriginFile && filepath.Base(ev.Origin.Ref) == ev.Filter+".yaml"
}

// moduleChanged sends a module its filter's source now holds to admission,
// with the settings it would be served with: the settings on trial if the
// filter's NAME.yaml changed and waits for its trial, else those in force.
// Whatever module of the filter waited on admission before is no longer in
// its source and is dropped.
func (c *Controller) moduleChanged(ctx context.Context, ev types.Event, log *zap.Logger) {
	rec := c.filter(ev.Filter)
	change, _ := rec.pending()
	if rec.settingsErr != nil && (change == nil || !change.fromFile) {
		// Admitting it with the settings in force would run it with
		// settings the operator did not write (the defaults, for a new
		// filter): it waits for the file to be fixed.
		c.submit(ctx, rec, change, nil)
		c.hold(rec, ev, log)
		return
	}
	rec.held = nil
	st := &rec.state
	if ev.Digest == st.Stable || ev.Digest == st.Candidate {
		c.submit(ctx, rec, change, nil)
		if st.Retired {
			st.Retired = false
			c.saveAndReconcile(ctx, rec, log)
		}
		return
	}
	if slices.ContainsFunc(st.Bad, func(b types.BadMark) bool { return b.Digest == ev.Digest }) {
		c.submit(ctx, rec, change, nil)
		err := fmt.Errorf("%s: version %s was rolled back earlier and is marked bad; clear it with `wasmfleet rollout clear-bad %s %s` to roll it out again",
			ev.Origin.Ref, ev.Digest.Short(), ev.Filter, ev.Digest)
		log.Warn("module ignored: version marked bad", zap.String("digest", ev.Digest.Short()))
		c.fail(rec, err)
		return
	}
	if change == nil && rec.resolveErr != nil {
		// The secret may have appeared since the filter was first seen.
		rec.resolved, rec.resolveErr = resolve("config", rec.settings)
	}
	if change == nil && rec.resolveErr != nil {
		c.submit(ctx, rec, nil, nil)
		err := fmt.Errorf("%s: not admitted: %w", ev.Origin.Ref, rec.resolveErr)
		log.Error("module not admitted: its filter's secrets cannot be read", zap.String("digest", ev.Digest.Short()), zap.Error(err))
		c.fail(rec, err)
		return
	}
	log.Info("module goes to admission", zap.String("digest", ev.Digest.Short()))
	c.submit(ctx, rec, change, &ev)
}

// hold keeps module event ev back while the filter's settings file is
// refused (rec.settingsErr): it is admitted once the file is fixed (the
// directory reports a module only once).
func (c *Controller) hold(rec *filterRec, ev types.Event, log *zap.Logger) {
	held := ev
	rec.held = &held
	err := fmt.Errorf("%s: not admitted until %s is fixed: %w", ev.Origin.Ref, c.settingsFile(ev.Filter), rec.settingsErr)
	log.Error("module held back: its filter's settings file is refused", zap.String("digest", ev.Digest.Short()), zap.Error(err))
	c.fail(rec, err)
}

// admitted records module event ev, which passed admission with the
// filter's settings, as the filter's newest version and rolls it out. It
// reports whether it did; the caller persists and reconciles. stored says
// the module is in the store already, committed from the copy staged
// during its trial; PutModule would hash, write and sync it again (3.6 ms
// on the way to the first node, in a stage-by-stage timing of
// BenchmarkFleetConvergenceRemote/nodes=1000).
func (c *Controller) admitted(rec *filterRec, ev types.Event, stored bool, log *zap.Logger) bool {
	if !stored {
		if _, err := c.cfg.Store.PutModule(ev.Module); err != nil {
			log.Error("cannot store module", zap.Error(err))
			c.fail(rec, err)
			return false
		}
	}
	v := types.Version{Filter: ev.Filter, Digest: ev.Digest, Size: int64(len(ev.Module)), Origin: ev.Origin, AddedAt: c.now(), Manifest: ev.Manifest}
	if err := c.cfg.Store.AddVersion(v); err != nil {
		log.Error("cannot record version", zap.Error(err))
		c.fail(rec, err)
		return false
	}
	next, decision := rollout.Admitted(rec.settings, rec.state, ev.Digest, c.now())
	rec.state = next
	rec.lastError = ""
	log.Info("module admitted", zap.String("digest", ev.Digest.Short()), zap.Stringer("decision", decision))
	return true
}

// prune deletes the stored modules that no filter needs any more: each
// filter keeps its newest keep_versions versions and the ones its state
// names (stable, candidate, marked bad, so that the fleet and `wasmfleet
// rollout clear-bad` always find them). It runs after a version is added,
// the only time the store grows, in the loop that stores modules.
func (c *Controller) prune() {
	pinned := make(map[string][]types.Digest, len(c.filters))
	for name, rec := range c.filters {
		ds := []types.Digest{rec.state.Stable, rec.state.Candidate}
		for _, b := range rec.state.Bad {
			ds = append(ds, b.Digest)
		}
		pinned[name] = ds
	}
	// A Config built without config.Default has 0, which would keep no
	// version but the pinned ones.
	removed, err := c.cfg.Store.Prune(cmp.Or(c.cfg.Config.KeepVersions, config.DefaultKeepVersions), pinned)
	for _, d := range removed {
		c.log.Info("module pruned from the store", zap.String("digest", d.Short()))
	}
	if err != nil {
		c.log.Error("cannot prune the store", zap.Error(err))
	}
}

// settingsChanged applies a new NAME.yaml: at once when no running version
// needs a new trial run for it, else when the trial passes.
func (c *Controller) settingsChanged(ctx context.Context, ev types.Event, log *zap.Logger) {
	rec := c.filter(ev.Filter)
	change, err := c.newSettings(ev.Filter, ev.Settings, c.settingsFile(ev.Filter), true)
	if err != nil {
		c.refuseFile(ctx, rec, err, log)
		return
	}
	_, module := rec.pending()
	if c.needsTrial(rec, change) {
		c.submit(ctx, rec, change, module)
	} else {
		c.adoptSettings(rec, change, log)
		c.submit(ctx, rec, nil, module)
		c.saveAndReconcile(ctx, rec, log)
		c.scheduleSteps()
	}
	if held := rec.held; held != nil {
		// As if it came now: a reload may have given the filter another
		// source meanwhile. With the settings on trial it joins their
		// trial.
		log.Info("the module held back for the settings file goes to admission")
		c.handleSource(ctx, *held)
	}
}

// newSettings parses raw (a NAME.yaml, nil for none) over the config
// file's entry for filter name and reads the secrets it refers to; file
// names where the settings come from in errors.
func (c *Controller) newSettings(name string, raw []byte, file string, fromFile bool) (*settingsChange, error) {
	next, err := c.parseSettings(name, raw)
	if err != nil {
		return nil, err
	}
	res, err := resolve(file, next)
	if err != nil {
		return nil, err
	}
	return &settingsChange{next: next, res: res, file: file, fromFile: fromFile, raw: raw}, nil
}

// needsTrial reports whether change may apply only once every version the
// fleet may run (stable and candidate) passed admission with it: a plugin
// configuration that makes the running module fail proxy_on_configure
// would otherwise be NACKed fleet-wide. The secrets it refers to were read
// when it was made: this is when a changed secret file reaches the fleet.
func (c *Controller) needsTrial(rec *filterRec, change *settingsChange) bool {
	if rec.state.Stable == "" && rec.state.Candidate == "" {
		return false
	}
	return rec.resolveErr != nil || !sameTrialInputs(rec.served(), change.served())
}

// adoptSettings makes change the filter's settings. It does not persist or
// reconcile.
func (c *Controller) adoptSettings(rec *filterRec, change *settingsChange, log *zap.Logger) {
	rec.settings, rec.resolved, rec.resolveErr = change.next, change.res, nil
	if change.fromFile {
		rec.settingsErr = nil
		rec.state.Settings = change.raw
		rec.lastError = ""
		log.Info("filter settings applied")
	}
}

// refuseFile refuses the filter's NAME.yaml for err: until the file is
// fixed no module of the filter is admitted (it could only run with
// settings the operator did not write), so the module waiting on admission,
// if any, is held back, and a settings file on trial is dropped.
func (c *Controller) refuseFile(ctx context.Context, rec *filterRec, err error, log *zap.Logger) {
	log.Error("filter settings refused", zap.Error(err))
	rec.settingsErr = err
	c.fail(rec, err)
	change, module := rec.pending()
	if change != nil && change.fromFile {
		change = nil
	}
	c.submit(ctx, rec, change, nil)
	if module != nil {
		c.hold(rec, *module, log)
	}
}

// sameTrialInputs reports whether admission would see the same thing: only
// the plugin configuration (secrets resolved), the VM configuration, root
// id, the VM's environment and signature policy feed it.
func sameTrialInputs(a, b config.Filter) bool {
	pa, _ := a.PluginConfiguration()
	pb, _ := b.PluginConfiguration()
	return bytes.Equal(pa, pb) && bytes.Equal(a.VMConfiguration(), b.VMConfiguration()) && a.RootID == b.RootID &&
		maps.Equal(a.VM.Env, b.VM.Env) && a.RequireSignature == b.RequireSignature
}
