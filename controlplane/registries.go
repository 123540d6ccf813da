package controlplane

import (
	"context"
	"os"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/source/oci"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// registrySet runs one registry poller (oci.Source) per filter whose source
// is an oci:// reference, and follows config reloads: a poller whose filter
// went away or whose settings changed is stopped, and one is started for
// every new or changed entry, so a reload does what a restart would.
//
// Reconfigure is safe for concurrent use and never blocks; Start is called
// once and owns the pollers. A reload only records the wanted config; Start
// applies the latest one, so a burst of reloads is applied once.
type registrySet struct {
	events chan<- types.Event
	// maxBytes is limits.max_module_bytes at start: limits apply only at a
	// restart, for pollers as for everything else.
	maxBytes int64
	// signatures is COSIGN_REPOSITORY at start, where cosign keeps
	// signatures when not beside the artifact (as `cosign verify` reads it).
	signatures string
	log        *zap.Logger

	mu     sync.Mutex
	wanted config.Config
	// changed holds a token when wanted has not been applied yet.
	changed chan struct{}
}

var _ reconfigurer = (*registrySet)(nil)

// CosignRepositoryEnv names the environment variable cosign reads for the
// repository that holds signatures; the control plane honours it too.
const CosignRepositoryEnv = "COSIGN_REPOSITORY"

// pollerKey is everything a poller's behaviour depends on: a running poller
// whose key is still wanted is left alone (its backoff and the last digest
// it reported stay), any other is replaced.
type pollerKey struct {
	filter, ref  string
	pollInterval time.Duration
	insecure     bool
}

// poller is a running oci.Source: cancel stops it, done closes when it has.
type poller struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newRegistrySet(cfg config.Config, events chan<- types.Event, log *zap.Logger) *registrySet {
	s := &registrySet{
		events: events, maxBytes: cfg.Limits.MaxModuleBytes, log: log.Named("source.oci"),
		signatures: os.Getenv(CosignRepositoryEnv),
		wanted:     cfg, changed: make(chan struct{}, 1),
	}
	s.changed <- struct{}{}
	return s
}

// Reconfigure records cfg, an accepted config, as the one to follow. It
// returns at once; Start stops and starts pollers.
func (s *registrySet) Reconfigure(_ context.Context, cfg config.Config) error {
	s.mu.Lock()
	s.wanted = cfg
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default: // Start has not read the previous change yet; it will read this one.
	}
	return nil
}

// Start runs the pollers the config asks for until ctx ends, then stops
// them all and returns nil once none is left.
func (s *registrySet) Start(ctx context.Context) error {
	running := map[pollerKey]poller{}
	defer func() {
		for k, p := range running {
			s.stop(k, p)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		}
		s.mu.Lock()
		cfg := s.wanted
		s.mu.Unlock()
		want := pollerKeys(cfg)
		// Stop before starting, so that a filter moved to another reference
		// never has two pollers sending at once.
		for k, p := range running {
			if _, ok := want[k]; !ok {
				s.stop(k, p)
				delete(running, k)
			}
		}
		for k := range want {
			if _, ok := running[k]; !ok {
				running[k] = s.start(ctx, k)
			}
		}
	}
}

func (s *registrySet) start(ctx context.Context, k pollerKey) poller {
	ctx, cancel := context.WithCancel(ctx)
	p := poller{cancel: cancel, done: make(chan struct{})}
	src := oci.New(oci.Config{
		Filter: k.filter, Ref: k.ref, PollInterval: k.pollInterval,
		MaxBytes: s.maxBytes, Insecure: k.insecure, SignatureRepository: s.signatures, Log: s.log,
	}, s.events)
	go func() {
		defer close(p.done)
		// Config validation parsed the reference, so this cannot fail; if
		// it did, the other filters must keep going.
		if err := src.Start(ctx); err != nil {
			s.log.Error("registry source stopped", zap.String("filter", k.filter), zap.Error(err))
		}
	}()
	return p
}

// stop cancels p and waits for it, so that it sends nothing afterwards.
func (s *registrySet) stop(k pollerKey, p poller) {
	p.cancel()
	<-p.done
	s.log.Info("stopped watching registry", zap.String("filter", k.filter), zap.String("ref", k.ref))
}

// pollerKeys is the set of pollers cfg asks for: one per filter whose
// source is an oci:// reference (config validation has parsed each one).
func pollerKeys(cfg config.Config) map[pollerKey]struct{} {
	out := map[pollerKey]struct{}{}
	for _, f := range cfg.Filters {
		ref, err := ociartifact.ParseRef(f.Source)
		if err != nil {
			continue // the watched directory, or a reference validation refused
		}
		f = f.WithDefaults()
		out[pollerKey{
			filter: f.Name, ref: f.Source, pollInterval: time.Duration(f.PollInterval),
			insecure: slices.Contains(cfg.InsecureRegistries, ref.Registry),
		}] = struct{}{}
	}
	return out
}
