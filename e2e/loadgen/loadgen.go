package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// Defaults.
const (
	DefaultNodePrefix   = "loadgen-"
	DefaultCluster      = "loadgen"
	DefaultNodesPerConn = 100
)

// Config says how many nodes to run and against what.
type Config struct {
	// XDSAddr is the control plane's ADS endpoint, host:port.
	XDSAddr string
	// N is the number of nodes. Their ids are NodePrefix followed by a
	// zero-padded index: loadgen-00000 ... (see NodeIDs).
	N          int
	NodePrefix string
	Cluster    string
	// Extensions are ECDS names every node subscribes to besides those its
	// listeners name: the names to watch in ECDS-only mode (no LDS).
	Extensions []string
	// NodesPerConn is how many nodes share one gRPC connection. Ignored
	// with TLS: each node then has a connection of its own, with its own
	// client certificate, as each Envoy does.
	NodesPerConn int
	// TLS, when set, returns the TLS client config (client certificate and
	// the control plane's CA) of a node by id.
	TLS func(nodeID string) (*tls.Config, error)
	// Delta makes every node speak delta xDS instead of state of the world.
	Delta bool
	// ReconnectBase and ReconnectMax bound each node's reconnect backoff.
	ReconnectBase, ReconnectMax time.Duration
	Log                         *zap.Logger
}

// Errors of Validate.
var (
	ErrNoXDSAddr = errors.New("loadgen: xds address is required")
	ErrNoNodes   = errors.New("loadgen: n must be positive")
)

// Validate lists every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.XDSAddr == "" {
		errs = append(errs, ErrNoXDSAddr)
	}
	if c.N <= 0 {
		errs = append(errs, ErrNoNodes)
	}
	return errors.Join(errs...)
}

// Fleet is N running nodes. Start runs them; the other methods may be called
// from any goroutine.
type Fleet struct {
	cfg   Config
	nodes []*node

	// modules checks inline module bytes; shared by every node.
	modules moduleCheck
	// codec decodes what every connection receives.
	codec codec
	// ecdsBytes counts the encoded size of every ECDS response received,
	// state of the world or delta.
	ecdsBytes atomic.Int64

	mu      sync.Mutex
	counts  map[string]int            // ECDS version -> nodes that have it
	digests map[string][]types.Digest // ECDS version -> modules it runs
	changed chan struct{}             // closed and replaced whenever a count grows
}

// New checks cfg and prepares the fleet; Start runs it.
func New(cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.NodePrefix == "" {
		cfg.NodePrefix = DefaultNodePrefix
	}
	if cfg.Cluster == "" {
		cfg.Cluster = DefaultCluster
	}
	if cfg.NodesPerConn <= 0 {
		cfg.NodesPerConn = DefaultNodesPerConn
	}
	if cfg.TLS != nil {
		cfg.NodesPerConn = 1
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	f := &Fleet{cfg: cfg, codec: newCodec(), counts: map[string]int{}, digests: map[string][]types.Digest{}, changed: make(chan struct{})}
	for i := range cfg.N {
		id := fmt.Sprintf("%s%05d", cfg.NodePrefix, i)
		f.nodes = append(f.nodes, &node{id: id, fleet: f, arrived: map[string]time.Time{}})
	}
	return f, nil
}

// NodeIDs returns the node ids, in index order.
func (f *Fleet) NodeIDs() []string {
	ids := make([]string, len(f.nodes))
	for i, n := range f.nodes {
		ids[i] = n.id
	}
	return ids
}

// Start connects every node and runs them until ctx ends.
func (f *Fleet) Start(ctx context.Context) error {
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(f.nodes))
	for i, n := range f.nodes {
		if i%f.cfg.NodesPerConn == 0 {
			var tc *tls.Config
			if f.cfg.TLS != nil {
				var err error
				if tc, err = f.cfg.TLS(n.id); err != nil {
					return fmt.Errorf("loadgen: %s: %w", n.id, err)
				}
			}
			cc, err := dial(f.cfg.XDSAddr, tc, f.codec)
			if err != nil {
				return fmt.Errorf("loadgen: %w", err)
			}
			conns = append(conns, cc)
		}
		c, err := ads.New(ads.Config{
			Node:        &core.Node{Id: n.id, Cluster: f.cfg.Cluster, UserAgentName: "envoy"},
			Conn:        conns[len(conns)-1],
			Wildcard:    []string{dataplane.ClusterType, dataplane.ListenerType},
			Named:       []string{dataplane.RouteType, dataplane.ExtensionType},
			Handler:     n,
			Delta:       f.cfg.Delta,
			Received:    f.received,
			BackoffBase: f.cfg.ReconnectBase,
			BackoffMax:  f.cfg.ReconnectMax,
			Rand:        rand.New(rand.NewPCG(uint64(i), 7)),
			Log:         f.cfg.Log.With(zap.String("node", n.id)),
		})
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Start(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// envoyWindow is Envoy's default HTTP/2 stream and connection flow-control
// window (initial_stream_window_size, initial_connection_window_size:
// 256 MiB). gRPC's client starts at 64 KiB and grows it by probing, so a
// 2.4 MB response would take dozens of window updates, each a scheduling
// round trip on a busy machine: the load generator, not the control plane,
// would set the pace.
const envoyWindow = 256 << 20

// readBuffer is how much each connection reads from its socket at once.
// gRPC's 32 KiB default made a read system call, and a wake-up of the
// reading goroutine, per two HTTP/2 frames of a module; with 1 MiB the
// fleet spent 17% less CPU per change at 1,000 nodes (fleet-cpu of
// BenchmarkFleetConvergence/nodes=1000 in e2e/scale: 2.84 and 2.76 s
// against 3.26 and 3.48 s, alternating runs), CPU that the control plane
// under test shares on 2 cores. It costs 1 MiB per connection, in the load
// generator only.
const readBuffer = 1 << 20

// dial opens a connection as ads.Dial does, with Envoy's flow-control
// windows, a large read buffer and the fleet's codec.
func dial(addr string, tc *tls.Config, c codec) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithInitialWindowSize(envoyWindow),
		grpc.WithInitialConnWindowSize(envoyWindow),
		grpc.WithReadBufferSize(readBuffer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(ads.MaxMessageBytes), grpc.ForceCodecV2(c)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return cc, nil
}

// WaitAcked blocks until every node has accepted ECDS version, or ctx ends,
// and returns when the version arrived at each node. On ctx's end the error
// says how many nodes were still missing.
func (f *Fleet) WaitAcked(ctx context.Context, version string) (map[string]time.Time, error) {
	for {
		f.mu.Lock()
		changed, have := f.changed, f.counts[version]
		f.mu.Unlock()
		if have == len(f.nodes) {
			out, _ := f.arrivals(version)
			return out, nil
		}
		select {
		case <-ctx.Done():
			out, missing := f.arrivals(version)
			return out, fmt.Errorf("loadgen: %d of %d nodes lack ECDS version %s: %w", missing, len(f.nodes), version, ctx.Err())
		case <-changed:
		}
	}
}

func (f *Fleet) arrivals(version string) (map[string]time.Time, int) {
	out := make(map[string]time.Time, len(f.nodes))
	missing := 0
	for _, n := range f.nodes {
		if at, ok := n.arrival(version); ok {
			out[n.id] = at
		} else {
			missing++
		}
	}
	return out, missing
}

// ECDSBytes is the encoded size of every ECDS response the fleet has
// received so far, over all nodes (cumulative): DiscoveryResponses under
// state of the world, DeltaDiscoveryResponses under delta.
func (f *Fleet) ECDSBytes() int64 { return f.ecdsBytes.Load() }

// received counts what every node's ADS client receives.
func (f *Fleet) received(typeURL string, bytes int) {
	if typeURL == dataplane.ExtensionType {
		f.ecdsBytes.Add(int64(bytes))
	}
}

// Digests returns the modules ECDS version runs (inline code hashed, remote
// code's sha256), sorted, as the first node that accepted it found them.
func (f *Fleet) Digests(version string) []types.Digest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.digests[version]
}

func (f *Fleet) record(version string, digests []types.Digest) {
	f.mu.Lock()
	f.counts[version]++
	if _, ok := f.digests[version]; !ok {
		f.digests[version] = digests
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// node is one simulated Envoy: it accepts everything and remembers which
// routes and filter configs its listeners name.
type node struct {
	id    string
	fleet *Fleet

	// Touched by the client's goroutine only.
	routes, exts []string

	mu      sync.Mutex
	arrived map[string]time.Time // ECDS version -> first accepted
}

func (n *node) arrival(version string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	at, ok := n.arrived[version]
	return at, ok
}

// Handle accepts every response; listeners update the names to subscribe.
func (n *node) Handle(resp *discovery.DiscoveryResponse) error {
	switch resp.GetTypeUrl() {
	case dataplane.ListenerType:
		var routes, exts []string
		for _, a := range resp.GetResources() {
			l := &listenerpb.Listener{}
			if err := a.UnmarshalTo(l); err != nil {
				return fmt.Errorf("listener: %w", err)
			}
			hcms, err := ads.HCMs(l)
			if err != nil {
				return err
			}
			for _, m := range hcms {
				r, e := ads.Refs(m)
				routes, exts = append(routes, r...), append(exts, e...)
			}
		}
		n.routes, n.exts = routes, exts
	case dataplane.ExtensionType:
		now := time.Now()
		digests, err := n.fleet.modules.digests(resp)
		if err != nil {
			return err
		}
		v := resp.GetVersionInfo()
		n.mu.Lock()
		_, seen := n.arrived[v]
		if !seen {
			n.arrived[v] = now
		}
		n.mu.Unlock()
		if !seen {
			n.fleet.record(v, digests)
		}
	}
	return nil
}

// Names is what the listeners name, plus the configured ECDS names.
func (n *node) Names(typeURL string) []string {
	switch typeURL {
	case dataplane.RouteType:
		return n.routes
	case dataplane.ExtensionType:
		return append(append([]string(nil), n.fleet.cfg.Extensions...), n.exts...)
	}
	return nil
}
