package xdscache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
)

// Defaults of Config.
const (
	// DefaultPushWindow: 64 responses of three 2.4 MB modules is ~460 MB
	// of encoded responses in flight, whatever the fleet's size.
	DefaultPushWindow = 64
	// DefaultLargeResponseBytes: a response at least this large takes a
	// window slot. Listeners, routes, clusters and remote-code filter
	// configs are kilobytes and never wait.
	DefaultLargeResponseBytes = 1 << 20
	// DefaultHoldTimeout bounds how long a node that does not answer keeps
	// its slot. Envoy answers an inline module after compiling it, about a
	// second for a 2.4 MB Go filter.
	DefaultHoldTimeout = 10 * time.Second
)

// Config sizes the push window.
type Config struct {
	// ADS holds a response until the request names every resource of its
	// type in the snapshot, as go-control-plane's ADS mode does.
	ADS bool
	// PushWindow is how many large responses may be in flight at once.
	PushWindow int
	// LargeResponseBytes is the encoded size from which a response counts
	// against the window.
	LargeResponseBytes int
	// HoldTimeout releases the slot of a response its node has not answered.
	HoldTimeout time.Duration
	Log         log.Logger
}

// Default is the configuration New uses for zero fields.
func Default() Config {
	return Config{PushWindow: DefaultPushWindow, LargeResponseBytes: DefaultLargeResponseBytes, HoldTimeout: DefaultHoldTimeout}
}

// ErrConfig is returned by Validate for a window that cannot work.
var ErrConfig = errors.New("xdscache: bad config")

// Validate lists every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.PushWindow < 1 {
		errs = append(errs, fmt.Errorf("%w: push window %d, want at least 1", ErrConfig, c.PushWindow))
	}
	if c.LargeResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: large response bytes %d, want 0 or more", ErrConfig, c.LargeResponseBytes))
	}
	if c.HoldTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: hold timeout %v, want more than 0", ErrConfig, c.HoldTimeout))
	}
	return errors.Join(errs...)
}

// Cache is a cache.SnapshotCache whose state-of-the-world responses share
// their resources' encodings and go out through a push window. All methods
// are safe for concurrent use.
type Cache struct {
	cfg Config
	// inner is go-control-plane's cache, given every snapshot: it serves
	// Fetch, GetSnapshot and status.
	inner cache.SnapshotCache

	mu     sync.Mutex
	nodes  map[string]*nodeState
	shared map[cache.ResourceSnapshot]*encoded
	nextID int64
	// inFlight counts the large responses handed to streams and not yet
	// answered; queue holds the watches waiting for a slot, oldest first.
	inFlight int
	queue    *list.List // of *watch
}

var _ cache.SnapshotCache = (*Cache)(nil)

// nodeState is one node's snapshot, its watches that wait for a change,
// and what its delta streams have not answered (see nack.go).
type nodeState struct {
	snap    cache.ResourceSnapshot
	enc     *encoded
	watches map[int64]*watch
	streams map[streamKey]*deltaStream
}

// watch is one open watch, state of the world (req, out) or delta (delta,
// deltaOut), from CreateWatch or CreateDeltaWatch until the server cancels
// it (on the node's next request of its type, or the end of its stream).
type watch struct {
	id       int64
	node     string
	req      *cache.Request
	out      chan cache.Response
	delta    *cache.DeltaRequest
	deltaOut chan cache.DeltaResponse
	// sub is the server's subscription; for delta, with its returned
	// resources corrected for NACKed responses (deltaStream.known).
	sub cache.Subscription

	// queued is the watch's place in Cache.queue while it waits for a slot.
	queued *list.Element
	// slot: a large response went out on it and has not been answered.
	slot bool
	hold *time.Timer
	done bool // cancelled
}

// New returns an empty cache.
func New(cfg Config) (*Cache, error) {
	d := Default()
	if cfg.PushWindow == 0 {
		cfg.PushWindow = d.PushWindow
	}
	if cfg.LargeResponseBytes == 0 {
		cfg.LargeResponseBytes = d.LargeResponseBytes
	}
	if cfg.HoldTimeout == 0 {
		cfg.HoldTimeout = d.HoldTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = log.NewDefaultLogger()
	}
	return &Cache{
		cfg:    cfg,
		inner:  cache.NewSnapshotCache(cfg.ADS, cache.IDHash{}, cfg.Log),
		nodes:  map[string]*nodeState{},
		shared: map[cache.ResourceSnapshot]*encoded{},
		queue:  list.New(),
	}, nil
}

// Window reports the large responses in flight and the watches waiting
// for a slot.
func (c *Cache) Window() (inFlight, queued int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight, c.queue.Len()
}

// SetSnapshot sets node's snapshot and answers its open watches whose
// version differs, in type order in ADS mode. Encodings are shared with
// every other node set to the same snapshot value.
func (c *Cache) SetSnapshot(ctx context.Context, node string, s cache.ResourceSnapshot) error {
	if err := c.inner.SetSnapshot(ctx, node, s); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(node)
	if n.snap != s {
		c.unref(n)
		n.snap, n.enc = s, c.ref(s)
	}
	open := slices.Collect(maps.Values(n.watches))
	// go-control-plane's ADS order: by response type, then by watch.
	slices.SortFunc(open, func(a, b *watch) int {
		ta, tb := cache.GetResponseType(a.typeURL()), cache.GetResponseType(b.typeURL())
		if ta != tb {
			return int(ta) - int(tb)
		}
		return int(a.id - b.id)
	})
	var errs []error
	for _, w := range open {
		if (w.delta == nil && n.snap.GetVersion(w.typeURL()) == w.req.GetVersionInfo()) || (w.delta != nil && !c.wants(w, n)) {
			continue
		}
		delete(n.watches, w.id)
		if err := c.respond(ctx, w, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CreateWatch answers at once when node's snapshot has something the
// request lacks (another version, or a subscribed resource not returned
// yet), and otherwise keeps the watch open until SetSnapshot.
func (c *Cache) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	return c.open(&watch{node: cache.IDHash{}.ID(req.GetNode()), req: req, sub: sub, out: out})
}

// CreateDeltaWatch answers at once when node's snapshot differs from what
// the subscription returned (or the node has, from
// initial_resource_versions), and otherwise keeps the watch open until
// SetSnapshot. The first request of a wildcard subscription is always
// answered, even with nothing (see wantsDelta).
func (c *Cache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	return c.open(&watch{node: cache.IDHash{}.ID(req.GetNode()), delta: req, sub: sub, deltaOut: out})
}

// open answers w now if its node's snapshot has something for it, else
// keeps it until SetSnapshot.
func (c *Cache) open(w *watch) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	w.id = c.nextID
	n := c.node(w.node)
	if w.delta != nil {
		n.answered(w)
	}
	if n.snap != nil && c.wants(w, n) {
		if err := c.respond(context.Background(), w, n); err != nil {
			return nil, fmt.Errorf("xdscache: %s: %s: %w", w.node, w.typeURL(), err)
		}
	} else {
		n.watches[w.id] = w
	}
	return func() { c.cancel(w) }, nil
}

// typeURL is the type w watches.
func (w *watch) typeURL() string {
	if w.delta != nil {
		return w.delta.GetTypeUrl()
	}
	return w.req.GetTypeUrl()
}

// wants says whether w should be answered from n's snapshot now, as
// go-control-plane's CreateWatch and CreateDeltaWatch decide.
func (c *Cache) wants(w *watch, n *nodeState) bool {
	t := w.typeURL()
	if w.delta != nil {
		te, err := n.enc.of(t, n.snap)
		// An encoding error is answered: respond reports it.
		return err != nil || wantsDelta(w.delta, w.sub, te)
	}
	if w.req.GetVersionInfo() != n.snap.GetVersion(t) {
		return true
	}
	known := w.sub.ReturnedResources()
	resources := n.snap.GetResourcesAndTTL(t)
	if w.sub.IsWildcard() {
		for r := range resources {
			if _, ok := known[r]; !ok {
				return true
			}
		}
		return false
	}
	for r := range w.sub.SubscribedResources() {
		if _, ok := known[r]; !ok {
			if _, ok := resources[r]; ok {
				return true
			}
		}
	}
	return false
}

// respond answers w from n's snapshot, through the window when the
// response is large. In ADS mode a request that does not name every
// resource of its type in the snapshot is not answered and its watch is
// dropped: Envoy asks again with the names (go-control-plane's rule).
// Called with c.mu held.
func (c *Cache) respond(ctx context.Context, w *watch, n *nodeState) error {
	if w.delta != nil {
		return c.respondDelta(ctx, w, n)
	}
	t := w.req.GetTypeUrl()
	resources := n.snap.GetResourcesAndTTL(t)
	if names := w.req.GetResourceNames(); len(names) != 0 && c.cfg.ADS {
		for r := range resources {
			if !slices.Contains(names, r) {
				c.cfg.Log.Warnf("ADS mode: not responding to request %s %v: %q not listed", t, names, r)
				return nil
			}
		}
	}
	resp, err := n.enc.response(ctx, w.req, w.sub, n.snap)
	if err != nil {
		return err
	}
	return c.send(ctx, w, resp.size, func() error { return deliver(ctx, w.out, cache.Response(resp)) })
}

// respondDelta answers w, a delta watch, from n's snapshot. Called with
// c.mu held.
func (c *Cache) respondDelta(ctx context.Context, w *watch, n *nodeState) error {
	resp, err := n.enc.deltaResponse(ctx, w.delta, w.sub, n.snap)
	if err != nil {
		return err
	}
	before := heldBefore(resp, w.sub.ReturnedResources())
	return c.send(ctx, w, resp.size, func() error {
		if err := deliver(ctx, w.deltaOut, cache.DeltaResponse(resp)); err != nil {
			return err
		}
		n.stream(w.streamKey()).record(resp, before)
		return nil
	})
}

// streamKey is the stream and type of w, a delta watch.
func (w *watch) streamKey() streamKey {
	return streamKey{out: w.deltaOut, typeURL: w.delta.GetTypeUrl()}
}

// answered takes in w's request, a delta stream's next request of its
// type, before w is answered: what the stream's previous response did not
// give the node, if the request NACKs it, is corrected in w's subscription.
// Called with c.mu held, on the stream's goroutine (CreateDeltaWatch).
func (n *nodeState) answered(w *watch) {
	k := w.streamKey()
	d, ok := n.streams[k]
	if !ok {
		return
	}
	d.answered(w.delta)
	if d.empty() {
		delete(n.streams, k)
		return
	}
	w.sub = correctedSub{Subscription: w.sub, returned: d.known(w.sub.ReturnedResources())}
}

// stream returns what the cache remembers of a delta stream's type,
// creating it. Called with c.mu held.
func (n *nodeState) stream(k streamKey) *deltaStream {
	d, ok := n.streams[k]
	if !ok {
		d = &deltaStream{}
		n.streams[k] = d
	}
	return d
}

// send hands w's response (of size bytes) to its stream with put, through
// the window when the response is large: if no slot is free, w waits in
// the queue and is answered from its node's snapshot when one frees.
// Called with c.mu held.
func (c *Cache) send(ctx context.Context, w *watch, size int, put func() error) error {
	if size >= c.cfg.LargeResponseBytes {
		if c.inFlight >= c.cfg.PushWindow {
			w.queued = c.queue.PushBack(w)
			return nil
		}
		c.inFlight++
		w.slot = true
		w.hold = time.AfterFunc(c.cfg.HoldTimeout, func() { c.timedOut(w) })
	}
	if err := put(); err != nil {
		c.releaseLocked(w)
		return err
	}
	return nil
}

// deliver puts r on a watch's channel. The server reads it on the stream's
// goroutine and holds at most one response per type in it, so the send
// does not block for long; go-control-plane's cache sends the same way.
func deliver[R any](ctx context.Context, out chan R, r R) error {
	select {
	case out <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancel ends w: the node answered its response (the server cancels a
// type's watch when the next request of that type arrives) or its stream
// ended. A slot it held goes to the oldest waiting watch.
func (c *Cache) cancel(w *watch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	if n, ok := c.nodes[w.node]; ok {
		delete(n.watches, w.id)
		if w.delta != nil {
			// The server cancels on the stream's goroutine: the nonces
			// of what it sent can be read, and the responses let go.
			if d := n.streams[w.streamKey()]; d != nil {
				d.settle()
			}
		}
	}
	if w.queued != nil {
		c.queue.Remove(w.queued)
		w.queued = nil
	}
	c.releaseLocked(w)
}

// timedOut frees the slot of a response its node did not answer in time.
func (c *Cache) timedOut(w *watch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.slot {
		c.cfg.Log.Warnf("node %q has not answered a %s response within %v; releasing its push window slot", w.node, w.typeURL(), c.cfg.HoldTimeout)
	}
	c.releaseLocked(w)
}

// releaseLocked frees w's slot, if it holds one, and answers waiting
// watches while slots are free, each from its node's latest snapshot.
func (c *Cache) releaseLocked(w *watch) {
	if !w.slot {
		return
	}
	w.slot = false
	w.hold.Stop()
	c.inFlight--
	for c.inFlight < c.cfg.PushWindow && c.queue.Len() > 0 {
		next := c.queue.Remove(c.queue.Front()).(*watch)
		next.queued = nil
		n, ok := c.nodes[next.node]
		if !ok || n.snap == nil {
			continue // cleared: go-control-plane forgets such watches too
		}
		if !c.wants(next, n) {
			n.watches[next.id] = next
			continue
		}
		if err := c.respond(context.Background(), next, n); err != nil {
			c.cfg.Log.Errorf("xdscache: %s: %s: %v", next.node, next.typeURL(), err)
		}
	}
}

// node returns node's state, creating it. Called with c.mu held.
func (c *Cache) node(id string) *nodeState {
	n, ok := c.nodes[id]
	if !ok {
		n = &nodeState{watches: map[int64]*watch{}, streams: map[streamKey]*deltaStream{}}
		c.nodes[id] = n
	}
	return n
}

// ref returns the shared encodings of s, counting one more node on it.
func (c *Cache) ref(s cache.ResourceSnapshot) *encoded {
	e, ok := c.shared[s]
	if !ok {
		e = newEncoded()
		c.shared[s] = e
	}
	e.nodes++
	return e
}

// unref counts one node fewer on n's snapshot; its encodings are dropped
// with the last one (responses in flight keep what they carry).
func (c *Cache) unref(n *nodeState) {
	if n.enc == nil {
		return
	}
	if n.enc.nodes--; n.enc.nodes == 0 {
		delete(c.shared, n.snap)
	}
}

// ClearSnapshot forgets node: its snapshot, its open and waiting watches.
func (c *Cache) ClearSnapshot(node string) {
	c.inner.ClearSnapshot(node)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.nodes[node]; ok {
		c.unref(n)
		delete(c.nodes, node)
	}
}

// Fetch is go-control-plane's.
func (c *Cache) Fetch(ctx context.Context, req *cache.Request) (cache.Response, error) {
	return c.inner.Fetch(ctx, req)
}

// GetSnapshot is go-control-plane's.
func (c *Cache) GetSnapshot(node string) (cache.ResourceSnapshot, error) {
	return c.inner.GetSnapshot(node)
}

// GetStatusInfo is go-control-plane's: it knows no watches.
func (c *Cache) GetStatusInfo(node string) cache.StatusInfo { return c.inner.GetStatusInfo(node) }

// GetStatusKeys is go-control-plane's.
func (c *Cache) GetStatusKeys() []string { return c.inner.GetStatusKeys() }

// response is a state-of-the-world response whose resources are shared
// encodings. The server sets the nonce on the DiscoveryResponse it gets,
// so each response builds its own; only the resources are shared.
type response struct {
	req      *discovery.DiscoveryRequest
	version  string
	ctx      context.Context
	out      *discovery.DiscoveryResponse
	returned map[string]string
	size     int
}

var _ cache.Response = (*response)(nil)

func (r *response) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) { return r.out, nil }
func (r *response) GetRequest() *discovery.DiscoveryRequest                     { return r.req }
func (r *response) GetVersion() (string, error)                                 { return r.version, nil }
func (r *response) GetResponseVersion() string                                  { return r.version }
func (r *response) GetReturnedResources() map[string]string                     { return r.returned }
func (r *response) GetContext() context.Context                                 { return r.ctx }

// ttlFree reports whether no resource has a TTL: go-control-plane wraps
// TTL resources per response (heartbeats), which sharing cannot do.
func ttlFree(rs map[string]types.ResourceWithTTL) bool {
	for _, r := range rs {
		if r.TTL != nil {
			return false
		}
	}
	return true
}
