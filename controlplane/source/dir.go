package source

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// DirConfig configures a watched directory. Zero fields take the defaults
// of package config.
type DirConfig struct {
	// Dir is the watched directory; created by Start if missing.
	Dir string
	// Debounce is how long a filter's files must be quiet before they are
	// read, unless the file that changed was closed by its writer or
	// renamed into place (Linux): then closedQuiet.
	Debounce time.Duration
	// MaxModuleBytes refuses larger modules without reading them.
	MaxModuleBytes int64
	// FollowOutsideSymlinks lets a file in Dir be a symlink that leads
	// outside it. Off, such a file is refused (ErrOutsideDir), unread; links
	// that stay inside Dir are followed either way.
	FollowOutsideSymlinks bool
	// Log is used as given (the caller names it); nil discards.
	Log *zap.Logger
}

const (
	// maxSideFileBytes bounds NAME.yaml, NAME.wasm.sig and
	// NAME.manifest.json: they are small by nature.
	maxSideFileBytes = 1 << 20
	// incompleteWaitDebounces is how many quiet periods a module that does
	// not look whole (looksWhole) is waited for, unchanged, before it is
	// reported anyway for admission to refuse.
	incompleteWaitDebounces = 20
	// closedQuiet is how long a unit waits once its file was closed after
	// writing or renamed into place, instead of the quiet period: time for
	// the files a tool writes right after (NAME.wasm.sig, or
	// NAME.manifest.json, which `wasmfleet build` renames in right after
	// the module) to show up and join the same report. Any of them that
	// starts changing meanwhile makes the unit wait for it again.
	closedQuiet = 5 * time.Millisecond
)

// fileKind says which debounced unit a file belongs to. Units of one
// filter settle in this order.
type fileKind int

const (
	// kindSettings: NAME.yaml. It goes first: a module reported before the
	// settings file beside it would be admitted with other settings.
	kindSettings fileKind = iota
	// kindModule: NAME.wasm with its .sig and manifest, reported together.
	kindModule
)

type key struct {
	filter string
	kind   fileKind
}

// closed is a file a writer closed, or that was renamed into the directory,
// as it was right then.
type closed struct {
	base string
	file fs.FileInfo
}

// incomplete remembers a module that did not look whole: which bytes, and
// since when they have stayed the same.
type incomplete struct {
	digest types.Digest
	since  time.Time
}

// Dir is the watched-directory source. It is a runner: NewDir, then Start
// once; all its state belongs to the Start goroutine.
type Dir struct {
	cfg DirConfig
	out chan<- types.Event
	log *zap.Logger

	dir      string                  // absolute
	closes   *closeWatch             // nil: no close reports, quiet periods only
	pending  map[key]time.Time       // when each debounced unit is due
	writing  map[string]time.Time    // file -> last change not known to be closed since
	closed   map[string]fs.FileInfo  // file -> the file when last closed or renamed in
	waiting  map[key]incomplete      // modules waited for because they look cut off
	modules  map[string]string       // filter -> fingerprint of the last ModuleChanged
	settings map[string]types.Digest // filter -> digest of the last SettingsChanged; "" after a SourceFailed
}

// NewDir returns a source for cfg.Dir that sends to out. Start sends with a
// blocking send (until ctx ends), so the consumer must keep reading; out is
// never closed, since several sources may share it.
func NewDir(cfg DirConfig, out chan<- types.Event) *Dir {
	if cfg.Dir == "" {
		cfg.Dir = config.DefaultWatchDir
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = config.DefaultDebounce
	}
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = config.DefaultMaxModuleBytes
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Dir{
		cfg:      cfg,
		out:      out,
		log:      cfg.Log,
		pending:  map[key]time.Time{},
		writing:  map[string]time.Time{},
		closed:   map[string]fs.FileInfo{},
		waiting:  map[key]incomplete{},
		modules:  map[string]string{},
		settings: map[string]types.Digest{},
	}
}

// Start creates the directory if missing, reports what it holds, then
// reports changes until ctx ends, when it returns nil. It returns an error
// only if watching cannot begin at all.
func (d *Dir) Start(ctx context.Context) error {
	dir, err := filepath.Abs(d.cfg.Dir)
	if err != nil {
		return fmt.Errorf("source: %s: %w", d.cfg.Dir, err)
	}
	d.dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("source: %s: %w", dir, err)
	}
	defer w.Close()
	// The parent tells us when the directory itself is removed, recreated
	// or swapped for another (a symlink retargeted by rename).
	if err := w.Add(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("source: watching parent of %s: %w", dir, err)
	}
	closes := make(chan closed, 16)
	if d.closes = watchCloses(dir, closes); d.closes != nil {
		defer d.closes.stop()
	}
	d.rewatch(w)
	d.log.Info("watching", zap.String("path", dir))

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.resetTimer(timer)
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("source: %s: watcher closed", dir)
			}
			d.handle(w, ev)
		case c := <-closes:
			d.closedFile(c)
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("source: %s: watcher closed", dir)
			}
			d.log.Warn("watch error, rescanning", zap.String("path", dir), zap.Error(err))
			d.scheduleAll()
		case <-timer.C:
			d.fireDue(ctx)
		}
	}
}

// resetTimer arms the timer for the earliest pending unit, or stops it.
func (d *Dir) resetTimer(t *time.Timer) {
	if len(d.pending) == 0 {
		t.Stop()
		return
	}
	var next time.Time
	for _, due := range d.pending {
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	t.Reset(time.Until(next))
}

func (d *Dir) handle(w *fsnotify.Watcher, ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	if name == d.dir {
		if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			d.rewatch(w)
		}
		return
	}
	if filepath.Dir(name) != d.dir {
		return // a sibling of the directory, seen through the parent's watch
	}
	base := filepath.Base(name)
	if k, ok := classify(base); ok {
		if d.unchangedSinceClose(base) {
			// Reported before, or right after, the close that
			// ended the write: nothing new to wait for.
			return
		}
		d.writing[base] = time.Now()
		d.schedule(k)
		return
	}
	if strings.HasPrefix(base, "..") {
		// A ConfigMap volume swapped its "..data" symlink: every file
		// behind a symlink through it may have changed.
		d.scheduleAll()
		return
	}
	d.log.Debug("ignored file", zap.String("path", name), zap.Stringer("op", ev.Op))
}

// rewatch (re)attaches the watch to the directory, which may be new, gone,
// or a symlink to somewhere else now, and rescans.
func (d *Dir) rewatch(w *fsnotify.Watcher) {
	if d.closes != nil {
		d.closes.rewatch()
	}
	_ = w.Remove(d.dir) // not watched any more is fine
	if err := w.Add(d.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("watched directory is gone; waiting for it", zap.String("path", d.dir))
		} else {
			d.log.Error("cannot watch directory", zap.String("path", d.dir), zap.Error(err))
		}
	}
	d.scheduleAll()
}

// classify maps a file name to the debounced unit it belongs to.
func classify(base string) (key, bool) {
	var k key
	switch {
	case strings.HasSuffix(base, ".wasm.sig"):
		k = key{strings.TrimSuffix(base, ".wasm.sig"), kindModule}
	case strings.HasSuffix(base, ".manifest.json"):
		k = key{strings.TrimSuffix(base, ".manifest.json"), kindModule}
	case strings.HasSuffix(base, ".wasm"):
		k = key{strings.TrimSuffix(base, ".wasm"), kindModule}
	case strings.HasSuffix(base, ".yaml"):
		k = key{strings.TrimSuffix(base, ".yaml"), kindSettings}
	default:
		return key{}, false
	}
	return k, config.ValidFilterName(k.filter)
}

// schedule starts (or restarts) k's quiet period.
func (d *Dir) schedule(k key) {
	d.pending[k] = time.Now().Add(d.cfg.Debounce)
}

// files lists the names of the files that make up unit k.
func (k key) files() []string {
	if k.kind == kindSettings {
		return []string{k.filter + ".yaml"}
	}
	return []string{k.filter + ".wasm", k.filter + ".wasm.sig", k.filter + ".manifest.json"}
}

// closedFile ends the wait for a file whose writer closed it, or that was
// renamed into place: its unit is due after closedQuiet, unless another of
// its files is still being written (then that file's quiet period rules).
// Closing is what a writer does last, so the file need not stay quiet for
// the whole quiet period first; a writer that keeps the file open, or
// opens it again, makes it change again and the wait start over.
func (d *Dir) closedFile(c closed) {
	k, ok := classify(c.base)
	if !ok {
		return
	}
	d.closed[c.base] = c.file
	delete(d.writing, c.base)
	due := time.Now().Add(closedQuiet)
	for _, f := range k.files() {
		if at, ok := d.writing[f]; ok {
			due = later(due, at.Add(d.cfg.Debounce))
		}
	}
	d.pending[k] = due
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// unchangedSinceClose reports whether base is still exactly the file that
// was last closed or renamed in. The close report and fsnotify's events come
// from two inotify instances, so a write's events may arrive after its
// close; they must not restart a wait the close ended. A file that changed
// since (new size, mtime, inode or mode, or gone) is forgotten as closed.
func (d *Dir) unchangedSinceClose(base string) bool {
	was, ok := d.closed[base]
	if !ok {
		return false
	}
	if now, err := os.Stat(d.path(base)); err == nil && sameFileState(was, now) {
		return true
	}
	delete(d.closed, base)
	return false
}

func sameFileState(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// scheduleAll schedules every unit with a file in the directory and every
// unit reported before, so that vanished files are reported too.
func (d *Dir) scheduleAll() {
	entries, err := os.ReadDir(d.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Error("cannot list directory", zap.String("path", d.dir), zap.Error(err))
	}
	for _, e := range entries {
		if k, ok := classify(e.Name()); ok {
			d.schedule(k)
		}
	}
	for f := range d.modules {
		d.schedule(key{f, kindModule})
	}
	for f := range d.settings {
		d.schedule(key{f, kindSettings})
	}
}

// fireDue settles every unit whose quiet period is over, in a fixed order.
func (d *Dir) fireDue(ctx context.Context) {
	now := time.Now()
	var due []key
	for k, at := range d.pending {
		if !at.After(now) {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.filter, b.filter), cmp.Compare(a.kind, b.kind))
	})
	for _, k := range due {
		delete(d.pending, k)
		if ctx.Err() != nil {
			return
		}
		if d.changedAfterClose(k) {
			d.schedule(k)
			continue
		}
		for _, f := range k.files() {
			delete(d.writing, f)
		}
		switch k.kind {
		case kindModule:
			if at, ok := d.pending[key{k.filter, kindSettings}]; ok {
				// The settings file is still being written (or was
				// just found changing): the module waits for it.
				d.pending[k] = at
				continue
			}
			d.settleModule(ctx, k)
		case kindSettings:
			d.settleSettings(ctx, k)
		}
	}
}

// changedAfterClose reports whether a file of k changed after the close
// that made k due, before fsnotify said so: it is being written again, and
// k waits a whole quiet period.
func (d *Dir) changedAfterClose(k key) bool {
	for _, f := range k.files() {
		if _, ok := d.closed[f]; ok && !d.unchangedSinceClose(f) {
			d.writing[f] = time.Now()
			return true
		}
	}
	return false
}

func (d *Dir) path(name string) string { return filepath.Join(d.dir, name) }

// within is the directory files must stay inside, or "" when symlinks may
// lead anywhere.
func (d *Dir) within() string {
	if d.cfg.FollowOutsideSymlinks {
		return ""
	}
	return d.dir
}

func (d *Dir) settleModule(ctx context.Context, k key) {
	path := d.path(k.filter + ".wasm")
	b, err := readSettled(path, d.cfg.MaxModuleBytes, d.within())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		delete(d.waiting, k)
		if _, reported := d.modules[k.filter]; reported {
			delete(d.modules, k.filter)
			d.log.Info("module removed", zap.String("filter", k.filter))
			d.send(ctx, types.Event{Kind: types.ModuleRemoved, Filter: k.filter, Origin: origin(path)})
		}
		return
	case errors.Is(err, errUnsettled):
		d.schedule(k)
		return
	case err != nil:
		delete(d.waiting, k)
		d.fail(ctx, k.filter, path, err)
		return
	}
	digest := types.DigestOf(b)
	if !looksWhole(b) && d.keepWaiting(k, digest) {
		d.schedule(k)
		return
	}
	delete(d.waiting, k)

	sig, err := readOptional(path+".sig", maxSideFileBytes, d.within())
	if d.sideFileFailed(ctx, k, path+".sig", err) {
		return
	}
	manifestPath := d.path(k.filter + ".manifest.json")
	rawManifest, err := readOptional(manifestPath, maxSideFileBytes, d.within())
	if d.sideFileFailed(ctx, k, manifestPath, err) {
		return
	}
	var manifest *types.Manifest
	if rawManifest != nil {
		manifest = new(types.Manifest)
		if err := json.Unmarshal(rawManifest, manifest); err != nil {
			d.fail(ctx, k.filter, manifestPath, fmt.Errorf("%w: %w", ErrBadManifest, err))
			return
		}
	}

	fingerprint := string(digest) + "/" + string(digestOrEmpty(sig)) + "/" + string(digestOrEmpty(rawManifest))
	if d.modules[k.filter] == fingerprint {
		d.log.Debug("module unchanged", zap.String("filter", k.filter), zap.String("digest", string(digest)))
		return
	}
	d.modules[k.filter] = fingerprint
	d.log.Info("module changed", zap.String("filter", k.filter), zap.String("digest", string(digest)), zap.Int("bytes", len(b)))
	d.send(ctx, types.Event{
		Kind: types.ModuleChanged, Filter: k.filter, Origin: origin(path),
		Module: b, Digest: digest, Manifest: manifest, Signature: sig,
	})
}

// keepWaiting reports whether a module that does not look whole should be
// waited for: yes while its bytes keep changing, and for
// incompleteWaitDebounces quiet periods once they stop.
func (d *Dir) keepWaiting(k key, digest types.Digest) bool {
	w, ok := d.waiting[k]
	if !ok || w.digest != digest {
		d.waiting[k] = incomplete{digest: digest, since: time.Now()}
		return true
	}
	return time.Since(w.since) < incompleteWaitDebounces*d.cfg.Debounce
}

// sideFileFailed handles an error reading a .sig or manifest: a file still
// changing waits for another quiet period; anything else is reported. Either
// way the module is not reported until the side file can be read.
func (d *Dir) sideFileFailed(ctx context.Context, k key, path string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errUnsettled):
		d.schedule(k)
	default:
		d.fail(ctx, k.filter, path, err)
	}
	return true
}

func (d *Dir) settleSettings(ctx context.Context, k key) {
	path := d.path(k.filter + ".yaml")
	b, err := readSettled(path, maxSideFileBytes, d.within())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, reported := d.settings[k.filter]; reported {
			delete(d.settings, k.filter)
			d.log.Info("settings removed", zap.String("filter", k.filter))
			d.send(ctx, types.Event{Kind: types.SettingsChanged, Filter: k.filter, Origin: origin(path)})
		}
		return
	case errors.Is(err, errUnsettled):
		d.schedule(k)
		return
	case err != nil:
		// Remembered as reported, with no digest: the file's removal,
		// or its first good read, is news.
		d.settings[k.filter] = ""
		d.fail(ctx, k.filter, path, err)
		return
	}
	digest := types.DigestOf(b)
	if last, ok := d.settings[k.filter]; ok && last == digest {
		return
	}
	d.settings[k.filter] = digest
	d.log.Info("settings changed", zap.String("filter", k.filter))
	d.send(ctx, types.Event{Kind: types.SettingsChanged, Filter: k.filter, Origin: origin(path), Settings: b})
}

// fail reports a file the source cannot use. What was reported before for
// the filter stays in force.
func (d *Dir) fail(ctx context.Context, filter, path string, err error) {
	err = fmt.Errorf("source: %s: %w", path, pathless(err))
	d.log.Warn("cannot use file", zap.String("filter", filter), zap.Error(err))
	d.send(ctx, types.Event{Kind: types.SourceFailed, Filter: filter, Origin: origin(path), Err: err})
}

func (d *Dir) send(ctx context.Context, ev types.Event) {
	select {
	case d.out <- ev:
	case <-ctx.Done():
	}
}

func origin(path string) types.Origin { return types.Origin{Kind: types.OriginFile, Ref: path} }

func digestOrEmpty(b []byte) types.Digest {
	if b == nil {
		return ""
	}
	return types.DigestOf(b)
}
