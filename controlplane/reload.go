package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
)

// reloadQuiet is how long the config file must be quiet before it is read,
// so an editor's write-rename-chmod burst is one reload.
const reloadQuiet = 100 * time.Millisecond

// reconfigurer is a part that follows config reloads: the controller, and
// the registry pollers. Reconfigure must be safe to call from the watcher's
// goroutine while the part runs; an error means cfg was applied with
// problems (it is logged), not that it was refused.
type reconfigurer interface {
	Reconfigure(ctx context.Context, cfg config.Config) error
}

// configWatcher reloads the config file when it changes and hands a valid
// one to each part, in order. A file that cannot be read, or no longer
// parses or validates, is refused with every problem logged, and no part
// sees it; the refusal stays in the status (Refused) until the file is
// fixed.
type configWatcher struct {
	path    string
	last    []byte
	parts   []reconfigurer
	metrics *metrics.Metrics
	log     *zap.Logger

	// mu guards refused, which the admin API reads while reload writes.
	mu      sync.Mutex
	refused *admin.RefusedReload
}

var _ admin.Reloads = (*configWatcher)(nil)

func newConfigWatcher(path string, initial []byte, parts []reconfigurer, m *metrics.Metrics, log *zap.Logger) *configWatcher {
	return &configWatcher{path: path, last: initial, parts: parts, metrics: m, log: log.Named("config")}
}

// Refused returns the last change of the file if it was refused and the
// file has not been fixed since (an applied reload, or the file back to the
// config that runs). Safe for concurrent use.
func (w *configWatcher) Refused() (admin.RefusedReload, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refused == nil {
		return admin.RefusedReload{}, false
	}
	return *w.refused, true
}

func (w *configWatcher) setRefused(r *admin.RefusedReload) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refused = r
}

// Start watches the file's directory (editors replace files by renaming, which
// a watch on the file itself would lose) until ctx ends.
func (w *configWatcher) Start(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("watching config %s: %w", w.path, err)
	}
	name := filepath.Base(w.path)
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-fw.Events:
			if filepath.Base(ev.Name) == name {
				quiet.Reset(reloadQuiet)
			}
		case err := <-fw.Errors:
			w.log.Warn("config watch error", zap.Error(err))
		case <-quiet.C:
			w.reload(ctx)
		}
	}
}

func (w *configWatcher) reload(ctx context.Context) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		w.log.Error("config reload: cannot read the file; keeping the running config", zap.String("path", w.path), zap.Error(err))
		w.refuse(err)
		return
	}
	if bytes.Equal(b, w.last) {
		// Back to what runs: whatever was refused meanwhile is undone.
		w.setRefused(nil)
		return
	}
	cfg, err := config.ParseFile(w.path, b)
	if err != nil {
		w.log.Error("config reload refused; keeping the running config", zap.String("path", w.path), zap.Error(err))
		w.metrics.ConfigReloads.WithLabelValues("refused").Inc()
		w.refuse(err)
		return
	}
	w.last = b
	w.setRefused(nil)
	w.metrics.ConfigReloads.WithLabelValues("applied").Inc()
	for _, p := range w.parts {
		if err := p.Reconfigure(ctx, cfg); err != nil {
			w.log.Error("config reloaded with problems", zap.String("path", w.path), zap.Error(err))
		}
	}
}

// refuse records that the file's current content was not applied, and why.
func (w *configWatcher) refuse(err error) {
	w.setRefused(&admin.RefusedReload{Path: w.path, Err: err, At: time.Now()})
}
