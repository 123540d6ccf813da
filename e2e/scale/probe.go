package scale

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// DefaultProbeNode is the probe's node id when ProbeConfig.Node is empty.
const DefaultProbeNode = "scale-probe"

// ProbeConfig says where the probe connects and which filter configs it
// subscribes to.
type ProbeConfig struct {
	XDSAddr string
	Node    string
	// Extensions are the ECDS resource names to watch, e.g.
	// in managed mode every slot ("wasmfleet.slot.0", "wasmfleet.slot.0.canary",
	// ...: the xDS cache answers only requests for all of them), in ECDS mode
	// "wasmfleet.NAME".
	Extensions []string
	// Routes are the RDS resource names to watch (none: no RDS
	// subscription), e.g. "wasmfleet.routes.ingress" in managed mode.
	Routes []string
	// TLS, when set, is the probe's TLS client config: its certificate must
	// name Node.
	TLS *tls.Config
	Log *zap.Logger
}

// ErrProbeConfig is wrapped by NewProbe for an unusable config.
var ErrProbeConfig = errors.New("scale: probe: bad config")

// Arrival is one ECDS version as the probe accepted it.
type Arrival struct {
	Version string
	At      time.Time
	// Digests are the modules the probe's Wasm filters run once the
	// version is applied (from the remote source's sha256, or hashed from
	// inline bytes), sorted. A response that carries only some filter
	// configs leaves the others as they were, as Envoy does.
	Digests []types.Digest
}

// Probe is one ADS node that subscribes to filter configs (ECDS), and to
// routes when asked, and remembers every version it accepted with the time
// it arrived. Start runs it; WaitDigest and WaitRoutes may be called from
// any goroutine.
type Probe struct {
	client *ads.Client
	names  []string
	routes []string

	mu sync.Mutex
	// configs is each ECDS resource's module as last received ("" for
	// one that runs none).
	configs  map[string]types.Digest
	arrivals []Arrival
	// routeArrivals are the RDS versions accepted (Digests empty).
	routeArrivals []Arrival
	changed       chan struct{} // closed and replaced on every arrival
}

// NewProbe checks cfg and returns a probe that has not connected yet.
func NewProbe(cfg ProbeConfig) (*Probe, error) {
	if cfg.XDSAddr == "" || len(cfg.Extensions) == 0 {
		return nil, fmt.Errorf("%w: xds address and extension names are required", ErrProbeConfig)
	}
	if cfg.Node == "" {
		cfg.Node = DefaultProbeNode
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Probe{names: slices.Clone(cfg.Extensions), routes: slices.Clone(cfg.Routes), configs: map[string]types.Digest{}, changed: make(chan struct{})}
	named := []string{dataplane.ExtensionType}
	if len(p.routes) > 0 {
		named = append(named, dataplane.RouteType)
	}
	c, err := ads.New(ads.Config{
		Node:        &core.Node{Id: cfg.Node, Cluster: "scale", UserAgentName: "envoy"},
		Addr:        cfg.XDSAddr,
		TLS:         cfg.TLS,
		Named:       named,
		Handler:     (*probeHandler)(p),
		BackoffBase: 50 * time.Millisecond,
		BackoffMax:  time.Second,
		Log:         cfg.Log.With(zap.String("node", cfg.Node)),
	})
	if err != nil {
		return nil, fmt.Errorf("scale: probe: %w", err)
	}
	p.client = c
	return p, nil
}

// Start connects and runs the probe until ctx ends.
func (p *Probe) Start(ctx context.Context) error { return p.client.Start(ctx) }

// WaitDigest blocks until a version after which the probe runs every
// module in ds has arrived, or ctx ends, and returns the first such version.
func (p *Probe) WaitDigest(ctx context.Context, ds ...types.Digest) (Arrival, error) {
	for {
		p.mu.Lock()
		changed := p.changed
		for _, a := range p.arrivals {
			if !slices.ContainsFunc(ds, func(d types.Digest) bool { return !slices.Contains(a.Digests, d) }) {
				p.mu.Unlock()
				return a, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return Arrival{}, fmt.Errorf("scale: probe: no ECDS version running %v: %w", ds, ctx.Err())
		case <-changed:
		}
	}
}

// WaitRoutes blocks until an RDS version for which match is true has
// arrived after since, or ctx ends, and returns the first such arrival.
func (p *Probe) WaitRoutes(ctx context.Context, since time.Time, match func(version string) bool) (Arrival, error) {
	for {
		p.mu.Lock()
		changed := p.changed
		for _, a := range p.routeArrivals {
			if !a.At.Before(since) && match(a.Version) {
				p.mu.Unlock()
				return a, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return Arrival{}, fmt.Errorf("scale: probe: no matching RDS version: %w", ctx.Err())
		case <-changed:
		}
	}
}

// probeHandler is the Probe as the ADS client sees it.
type probeHandler Probe

var _ ads.Handler = (*probeHandler)(nil)

// Handle records an ECDS response; one that cannot be decoded is NACKed.
func (h *probeHandler) Handle(resp *discovery.DiscoveryResponse) error {
	at := time.Now()
	var configs map[string]types.Digest
	switch resp.GetTypeUrl() {
	case dataplane.ExtensionType:
		var err error
		if configs, err = wasmDigests(resp); err != nil {
			return err
		}
	case dataplane.RouteType:
	default:
		return nil
	}
	h.mu.Lock()
	maps.Copy(h.configs, configs)
	var digests []types.Digest
	for _, d := range h.configs {
		if d != "" {
			digests = append(digests, d)
		}
	}
	slices.Sort(digests)
	a := Arrival{Version: resp.GetVersionInfo(), At: at, Digests: digests}
	if resp.GetTypeUrl() == dataplane.RouteType {
		h.routeArrivals = append(h.routeArrivals, a)
	} else {
		h.arrivals = append(h.arrivals, a)
	}
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	return nil
}

// Names is the configured ECDS and RDS names.
func (h *probeHandler) Names(typeURL string) []string {
	switch typeURL {
	case dataplane.ExtensionType:
		return h.names
	case dataplane.RouteType:
		return h.routes
	}
	return nil
}

// wasmDigests returns the module each resource of an ECDS response runs,
// by resource name ("" for a config that runs none).
func wasmDigests(resp *discovery.DiscoveryResponse) (map[string]types.Digest, error) {
	out := map[string]types.Digest{}
	for _, a := range resp.GetResources() {
		ext := &core.TypedExtensionConfig{}
		if err := a.UnmarshalTo(ext); err != nil {
			return nil, fmt.Errorf("ecds: %w", err)
		}
		out[ext.GetName()] = ""
		w := &wasmfilter.Wasm{}
		if !ext.GetTypedConfig().MessageIs(w) {
			continue // an unused slot
		}
		if err := ext.GetTypedConfig().UnmarshalTo(w); err != nil {
			return nil, fmt.Errorf("ecds: %s: %w", ext.GetName(), err)
		}
		code := w.GetConfig().GetVmConfig().GetCode()
		switch {
		case code.GetRemote() != nil:
			out[ext.GetName()] = types.Digest(code.GetRemote().GetSha256())
		case code.GetLocal() != nil:
			out[ext.GetName()] = types.DigestOf(code.GetLocal().GetInlineBytes())
		}
	}
	return out, nil
}
