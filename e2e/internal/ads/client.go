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
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
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
	Handle(resp *discovery.DiscoveryResponse) error
	// Names returns the resource names the client should now subscribe to
	// for a named (non-wildcard) type, given everything handled so far.
	Names(typeURL string) []string
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
	// Per type state. Touched only by Start's goroutine.
	types map[string]*typeState

	mu       sync.Mutex
	connects int
	lastErr  error
}

type typeState struct {
	version    string   // last accepted version_info
	nonce      string   // nonce of the last response received on this stream
	names      []string // names subscribed; nil for wildcard types
	subscribed bool     // a request was sent on this stream
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
	c := &Client{cfg: cfg, types: map[string]*typeState{}}
	for _, t := range cfg.Wildcard {
		c.types[t] = &typeState{}
	}
	for _, t := range cfg.Named {
		c.types[t] = &typeState{}
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
	attempt := 0
	for {
		received, err := c.stream(ctx, api)
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

// stream runs one ADS stream; received says whether any response arrived
// (a stream that worked resets the backoff).
func (c *Client) stream(ctx context.Context, api discovery.AggregatedDiscoveryServiceClient) (received bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := api.StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.connects++
	c.mu.Unlock()
	for _, ts := range c.types {
		ts.nonce, ts.subscribed = "", false
	}
	first := true
	send := func(typeURL string, detail error) error {
		ts := c.types[typeURL]
		req := &discovery.DiscoveryRequest{
			VersionInfo:   ts.version,
			ResourceNames: ts.names,
			TypeUrl:       typeURL,
			ResponseNonce: ts.nonce,
		}
		if first {
			req.Node, first = c.cfg.Node, false
		}
		if detail != nil {
			req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: detail.Error()}
		}
		ts.subscribed = true
		return s.Send(req)
	}
	for _, t := range c.cfg.Wildcard {
		if err := send(t, nil); err != nil {
			return false, err
		}
	}
	if err := c.resubscribe(send); err != nil {
		return false, err
	}
	for {
		resp, err := s.Recv()
		if err != nil {
			return received, err
		}
		received = true
		ts, ok := c.types[resp.GetTypeUrl()]
		if !ok {
			c.cfg.Log.Warn("ads: response for a type never subscribed", zap.String("type", resp.GetTypeUrl()))
			continue
		}
		ts.nonce = resp.GetNonce()
		herr := c.cfg.Handler.Handle(resp)
		if herr == nil {
			ts.version = resp.GetVersionInfo()
		}
		if err := send(resp.GetTypeUrl(), herr); err != nil {
			return received, err
		}
		if err := c.resubscribe(send); err != nil {
			return received, err
		}
	}
}

// resubscribe sends a request for every named type whose wanted names
// differ from what this stream subscribed (or that is not subscribed yet).
// A type whose names drop to none keeps its last subscription: an empty
// name list would mean "everything" to a state-of-the-world server.
func (c *Client) resubscribe(send func(string, error) error) error {
	for _, t := range c.cfg.Named {
		ts := c.types[t]
		names := slices.Clone(c.cfg.Handler.Names(t))
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) == 0 || (ts.subscribed && slices.Equal(names, ts.names)) {
			continue
		}
		ts.names = names
		if err := send(t, nil); err != nil {
			return err
		}
	}
	return nil
}
