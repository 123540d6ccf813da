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
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
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
			rec.settingsErr = ev.Err
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

func (c *Controller) moduleChanged(ctx context.Context, ev types.Event, log *zap.Logger) {
	rec := c.filter(ev.Filter)
	if rec.settingsErr != nil {
		// Admitting it with the settings in force would run it with
		// settings the operator did not write (the defaults, for a new
		// filter): it waits for the file to be fixed.
		held := ev
		rec.held = &held
		err := fmt.Errorf("%s: not admitted until %s is fixed: %w", ev.Origin.Ref, c.settingsFile(ev.Filter), rec.settingsErr)
		log.Error("module held back: its filter's settings file is refused", zap.String("digest", ev.Digest.Short()), zap.Error(err))
		c.fail(rec, err)
		return
	}
	rec.held = nil
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
	c.prune()
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
		rec.settingsErr = err
		c.fail(rec, err)
		return
	}
	rec.settingsErr = nil
	rec.state.Settings = ev.Settings
	rec.lastError = ""
	log.Info("filter settings applied")
	c.saveAndReconcile(ctx, rec, log)
	c.scheduleSteps()
	if held := rec.held; held != nil {
		// As if it came now: a reload may have given the filter another
		// source meanwhile.
		log.Info("the module held back for the settings file goes to admission")
		c.handleSource(ctx, *held)
	}
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
// the plugin configuration (secrets resolved), the VM configuration, root
// id, the VM's environment and signature policy feed it.
func sameTrialInputs(a, b config.Filter) bool {
	pa, _ := a.PluginConfiguration()
	pb, _ := b.PluginConfiguration()
	return bytes.Equal(pa, pb) && bytes.Equal(a.VMConfiguration(), b.VMConfiguration()) && a.RootID == b.RootID &&
		maps.Equal(a.VM.Env, b.VM.Env) && a.RequireSignature == b.RequireSignature
}
