package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

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
// one to each part, in order. A file that no longer parses or validates is
// refused with every problem logged, and no part sees it.
type configWatcher struct {
	path    string
	last    []byte
	parts   []reconfigurer
	metrics *metrics.Metrics
	log     *zap.Logger
}

func newConfigWatcher(path string, initial []byte, parts []reconfigurer, m *metrics.Metrics, log *zap.Logger) *configWatcher {
	return &configWatcher{path: path, last: initial, parts: parts, metrics: m, log: log.Named("config")}
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
		return
	}
	if bytes.Equal(b, w.last) {
		return
	}
	cfg, err := config.Parse(b)
	if err != nil {
		w.log.Error("config reload refused; keeping the running config", zap.String("path", w.path), zap.Error(err))
		w.metrics.ConfigReloads.WithLabelValues("refused").Inc()
		return
	}
	w.last = b
	w.metrics.ConfigReloads.WithLabelValues("applied").Inc()
	for _, p := range w.parts {
		if err := p.Reconfigure(ctx, cfg); err != nil {
			w.log.Error("config reloaded with problems", zap.String("path", w.path), zap.Error(err))
		}
	}
}
