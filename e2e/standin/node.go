package standin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// clientFeatures are the xDS client features Envoy advertises that matter
// to a control plane talking to the stand-in.
var clientFeatures = []string{
	"envoy.config.require-any-fields-contain-struct",
	"envoy.lb.does_not_support_overprovisioning",
	"envoy.lrs.supports_send_all_clusters",
}

// node is the stand-in. Its state is guarded by mu; the xDS handler (one
// goroutine), background code fetches and HTTP requests share it. Configs
// reachable from the state are never modified once stored, so a request
// copies the pointers it needs under a read lock and runs without locks.
type node struct {
	cfg  Config
	log  *zap.Logger
	host wasmHost
	ads  *ads.Client
	// upstream carries proxied requests and remote code fetches.
	upstream *http.Transport

	// ctx is Start's context, for background work started by updates.
	ctx context.Context
	bg  sync.WaitGroup
	// inflight counts requests being served; stop waits for them before
	// it closes the VMs they may be running in.
	inflight sync.WaitGroup

	mu        sync.RWMutex
	clusters  map[string]*clusterState
	routes    map[string]*routepb.RouteConfiguration
	listeners map[string]*listenerState
	slots     map[string]*slot
	watches   map[string]*watch // ECDS subscriptions, see syncWatches
	watchSeq  uint64            // start order of the last watch started
	ldsOrder  []string          // listener names in the last LDS response's order
	types     map[string]*dataplane.TypeStatus
	codeCache map[string][]byte // sha256 hex -> module bytes
	fetching  map[string]bool   // sha256 hex -> a fetch is running
	drains    int
	stopped   bool   // no request may start any more
	adminAddr string // where serveAdmin listens

	// metrics are the ones every filter's VMs define, shared as Envoy's
	// stats store is; logLevel is the guests' log level.
	metrics  *wasmhost.Metrics
	logLevel wasmhost.LogLevel

	rndMu sync.Mutex
	rnd   *rand.Rand

	logMu sync.Mutex
	logs  []dataplane.LogLine
}

var _ dataplane.Node = (*node)(nil)

// New returns a stand-in node; Start runs it.
func New(cfg Config) (dataplane.Node, error) {
	if err := cfg.Config.Validate(); err != nil {
		return nil, fmt.Errorf("standin: %w", err)
	}
	cfg = cfg.withDefaults()
	level, err := wasmhost.ParseLogLevel(cfg.WasmLogLevel)
	if err != nil {
		return nil, fmt.Errorf("standin: %w", err)
	}
	n := &node{
		cfg: cfg,
		log: cfg.Log.Named("standin").With(zap.String("node", cfg.NodeID)),
		// DisableCompression: the node must forward the headers the filters
		// left, no more; Go's Transport would add accept-encoding: gzip and
		// undo the upstream's gzip before the response filters saw its body.
		upstream:  &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		clusters:  map[string]*clusterState{},
		routes:    map[string]*routepb.RouteConfiguration{},
		listeners: map[string]*listenerState{},
		slots:     map[string]*slot{},
		watches:   map[string]*watch{},
		types:     map[string]*dataplane.TypeStatus{},
		codeCache: map[string][]byte{},
		fetching:  map[string]bool{},
		rnd:       cfg.rand(1),
		metrics:   wasmhost.NewMetrics(),
		logLevel:  level,
	}
	return n, nil
}

// Start connects to the control plane and serves until ctx ends.
func (n *node) Start(ctx context.Context) error {
	// SIMPLIFICATION: Envoy reads the xDS cluster's and the module
	// cluster's TLS contexts separately (the bootstrap's transport socket,
	// managed.modules_tls); the stand-in uses its one set of files for both:
	// the xDS connection and https module fetches.
	var tc *tls.Config
	if n.cfg.TLS != nil {
		var err error
		if tc, err = n.cfg.TLS.ClientConfig(n.cfg.XDSAddr); err != nil {
			return fmt.Errorf("standin: %s: %w", n.cfg.NodeID, err)
		}
		mc := tc.Clone()
		mc.ServerName = "" // the module URL's host
		n.upstream.TLSClientConfig = mc
	}
	client, err := ads.New(ads.Config{
		Node: &core.Node{
			Id:            n.cfg.NodeID,
			Cluster:       n.cfg.Cluster,
			UserAgentName: "envoy",
			UserAgentVersionType: &core.Node_UserAgentBuildVersion{UserAgentBuildVersion: &core.BuildVersion{
				Version: &typepb.SemanticVersion{MajorNumber: EnvoyMajor, MinorNumber: EnvoyMinor},
			}},
			ClientFeatures: clientFeatures,
		},
		Addr:        n.cfg.XDSAddr,
		TLS:         tc,
		Wildcard:    []string{dataplane.ClusterType, dataplane.ListenerType},
		Named:       []string{dataplane.RouteType, dataplane.ExtensionType},
		Handler:     n,
		Delta:       n.cfg.Delta,
		BackoffBase: n.cfg.ReconnectBase,
		BackoffMax:  n.cfg.ReconnectMax,
		Rand:        n.cfg.rand(2),
		Log:         n.log,
	})
	if err != nil {
		return fmt.Errorf("standin: %s: %w", n.cfg.NodeID, err)
	}
	host, err := newWasmHost(ctx, n)
	if err != nil {
		return fmt.Errorf("standin: %s: %w", n.cfg.NodeID, err)
	}
	n.mu.Lock()
	n.ctx, n.host, n.ads = ctx, host, client
	n.mu.Unlock()
	if n.cfg.AdminAddr != "" {
		if err := n.serveAdmin(); err != nil {
			n.stop()
			return fmt.Errorf("standin: %s: %w", n.cfg.NodeID, err)
		}
	}
	err = client.Start(ctx)
	n.stop()
	return err
}

// stop closes the listeners, waits for background work and frees the VMs.
func (n *node) stop() {
	n.mu.Lock()
	n.stopped = true
	for _, ls := range n.listeners {
		if ls.active != nil {
			ls.active.srv.Close()
		}
	}
	for _, w := range n.watches {
		w.stopTimer()
	}
	n.mu.Unlock()
	n.inflight.Wait()
	n.bg.Wait()
	n.mu.Lock()
	for _, s := range n.slots {
		if s.cur != nil {
			n.retire(s.cur)
		}
	}
	n.mu.Unlock()
	n.bg.Wait()
	n.upstream.CloseIdleConnections()
	n.host.close(context.Background())
}

func (n *node) Listeners() map[string]string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := map[string]string{}
	for name, ls := range n.listeners {
		if ls.active != nil {
			out[name] = dataplane.DialAddr(ls.active.addr)
		}
	}
	return out
}

func (n *node) Status() dataplane.Status {
	n.mu.RLock()
	defer n.mu.RUnlock()
	st := dataplane.Status{Types: map[string]dataplane.TypeStatus{}, Extensions: map[string]dataplane.ExtensionStatus{}}
	for t, ts := range n.types {
		st.Types[t] = *ts
	}
	for name, s := range n.slots {
		st.Extensions[name] = s.status
	}
	if n.ads != nil {
		st.Streams = n.ads.Connects()
		if err := n.ads.LastError(); err != nil {
			st.StreamError = err.Error()
		}
	}
	return st
}

func (n *node) Logs() []dataplane.LogLine {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	return append([]dataplane.LogLine(nil), n.logs...)
}

func (n *node) appendLog(l dataplane.LogLine) {
	n.logMu.Lock()
	n.logs = append(n.logs, l)
	n.logMu.Unlock()
}

func (n *node) Drains() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.drains
}

// draw returns a uniform number in [0, max) from the node's seeded source.
func (n *node) draw(max uint64) uint64 {
	n.rndMu.Lock()
	defer n.rndMu.Unlock()
	return n.rnd.Uint64N(max)
}

// go runs f in the background until it returns; stop waits for it.
func (n *node) goBackground(f func()) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f()
	}()
}

// errUnsupported marks resources the stand-in cannot emulate; it NACKs
// them rather than pretend (see SIMPLIFICATIONS.md).
var errUnsupported = errors.New("not supported by the stand-in")
