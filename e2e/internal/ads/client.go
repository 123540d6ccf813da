package ads

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Default reconnect backoff: Envoy's own defaults for the ADS stream are a
// 500 ms base and a 30 s cap; tests usually shorten them.
const (
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// MaxMessageBytes bounds one response. gRPC's 4 MiB default is too small for
// ECDS responses with inline modules (a Go filter is ~2 MB); Envoy sets no
// such limit of its own on its ADS stream.
const MaxMessageBytes = 512 << 20

// Handler applies responses. The client calls it from one goroutine only, so
// an implementation needs no locking against itself.
type Handler interface {
	// Handle applies a response and returns nil to ACK it or the reason to
	// NACK it. A rejected response must leave the handler's state as it was,
	// except for parts it documents as applied independently.
	//
	// Under delta xDS the client hands over a state-of-the-world view of
	// the delta response, so that one apply path serves both protocols:
	// version_info is the response's system_version_info, and the
	// resources are, for a wildcard type, every resource the client holds
	// once the response is applied (one left out is gone, as in state of
	// the world) and, for a named type, the resources the response added
	// or changed (one left out keeps its config, as a state-of-the-world
	// response for a named type may leave out what the client has).
	Handle(resp *discovery.DiscoveryResponse) error
	// Names returns the resource names the client should now subscribe to
	// for a named (non-wildcard) type, given everything handled so far.
	Names(typeURL string) []string
}

// DeltaHandler is a Handler that is also told which resources a delta
// response removed: a named resource that is still subscribed can only be
// removed under delta xDS, and what that means is the handler's business
// (Envoy drops a filter config, FilterConfigSubscription::onConfigRemoved
// in source/common/filter/config_discovery_impl.cc, and ignores a route
// configuration's removal, RdsRouteConfigSubscription::onConfigUpdate in
// source/common/rds/rds_route_config_subscription.cc). Under delta xDS the client calls HandleDelta instead of Handle
// when the handler has it.
type DeltaHandler interface {
	Handler
	// HandleDelta is Handle with removed, the names in the response's
	// removed_resources that the client held or subscribed to.
	HandleDelta(resp *discovery.DiscoveryResponse, removed []string) error
}

// Config says who the client is, where it connects and what it subscribes.
type Config struct {
	Node *core.Node
	// Addr is the control plane's gRPC address, host:port. Ignored when
	// Conn is set.
	Addr string
	// Conn, if set, carries the stream instead of a connection of the
	// client's own, so that many clients can share a few connections.
	Conn grpc.ClientConnInterface
	// TLS, when set, makes the client's own connection TLS with it (a
	// client certificate in Certificates, the control plane's CA in
	// RootCAs), as Envoy's tls transport socket on the xDS cluster does.
	// Ignored when Conn is set. Nil means plaintext.
	TLS *tls.Config
	// Wildcard types are subscribed as soon as a stream opens, in order.
	Wildcard []string
	// Named types are subscribed once Handler.Names returns names for them.
	Named   []string
	Handler Handler
	// Delta makes the client speak delta xDS (DeltaAggregatedResources) as
	// Envoy's delta gRPC mux does; false is state of the world
	// (StreamAggregatedResources), what the bootstraps in envoy/ use.
	Delta bool
	// Received, when set, is told the encoded size of every response as it
	// arrives, before it is handled, for either protocol.
	Received func(typeURL string, bytes int)
	// BackoffBase and BackoffMax bound the delay before reconnecting: it
	// doubles from the base up to the max and is jittered to 50-100%.
	BackoffBase, BackoffMax time.Duration
	// Rand draws the jitter; nil seeds one from the clock.
	Rand *rand.Rand
	Log  *zap.Logger
}

// Client is one ADS client. Start runs it; Connects may be read from any
// goroutine.
type Client struct {
	cfg Config
	// Per type state, of the protocol in use. Touched only by Start's
	// goroutine.
	types  map[string]*typeState
	deltas map[string]*deltaType

	mu       sync.Mutex
	connects int
	lastErr  error
}

// ErrConfig is wrapped by New for an unusable Config.
var ErrConfig = errors.New("ads: bad config")

// New checks cfg and returns a client that has not connected yet.
func New(cfg Config) (*Client, error) {
	if cfg.Node == nil || (cfg.Addr == "" && cfg.Conn == nil) || cfg.Handler == nil {
		return nil, fmt.Errorf("%w: node, addr (or conn) and handler are required", ErrConfig)
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffBase)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	c := &Client{cfg: cfg, types: map[string]*typeState{}, deltas: map[string]*deltaType{}}
	for _, t := range append(slices.Clone(cfg.Wildcard), cfg.Named...) {
		if cfg.Delta {
			c.deltas[t] = newDeltaType(slices.Contains(cfg.Wildcard, t))
		} else {
			c.types[t] = &typeState{}
		}
	}
	return c, nil
}

// Connects counts the streams opened so far (1 after the first connect).
func (c *Client) Connects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// LastError is the error that ended the latest stream (or kept it from
// opening), nil before the first one ended.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Start connects and serves the stream until ctx ends, reconnecting after
// every failure. It returns nil when ctx ends.
func (c *Client) Start(ctx context.Context) error {
	conn := c.cfg.Conn
	if conn == nil {
		cc, err := Dial(c.cfg.Addr, c.cfg.TLS)
		if err != nil {
			return err
		}
		defer cc.Close()
		conn = cc
	}
	api := discovery.NewAggregatedDiscoveryServiceClient(conn)
	run := c.stream
	if c.cfg.Delta {
		run = c.deltaStream
	}
	attempt := 0
	for {
		received, err := run(ctx, api)
		if ctx.Err() != nil {
			return nil
		}
		if received {
			attempt = 0
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		delay := c.backoff(attempt)
		attempt++
		c.cfg.Log.Info("ads stream ended; reconnecting", zap.Error(err), zap.Duration("delay", delay))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// Dial opens a connection to a control plane, with the message size limit
// lifted (MaxMessageBytes): TLS with tc, or plaintext when tc is nil. It
// does not block.
func Dial(addr string, tc *tls.Config) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("ads: %s: %w", addr, err)
	}
	return cc, nil
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase
	for i := 0; i < attempt && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	return d/2 + time.Duration(c.cfg.Rand.Int64N(int64(d/2)+1))
}

// names is what the handler wants of a named type now, sorted and without
// duplicates, under either protocol.
func (c *Client) names(typeURL string) []string {
	names := slices.Clone(c.cfg.Handler.Names(typeURL))
	slices.Sort(names)
	return slices.Compact(names)
}

// received reports a response's encoded size to Config.Received.
func (c *Client) received(typeURL string, m proto.Message) {
	if c.cfg.Received != nil {
		c.cfg.Received(typeURL, proto.Size(m))
	}
}
