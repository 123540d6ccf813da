package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/metrics"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Defaults for Config.
const (
	// DefaultMaxQueued is how many undelivered events one subscriber may
	// have before it falls behind: further events to it are dropped (and
	// counted) until it has caught up and been sent a Resync.
	DefaultMaxQueued = 1 << 16
	// DefaultRetention is how long the assignments recorded for a node are
	// kept after its last stream closed. A node that comes back within it
	// (an Envoy restart, a network blip) and reports the version it runs is
	// resolved at once; one that comes back later is resolved when the
	// control plane assigns it that version again (see Registry.Assigned).
	// Node ids churn (every new Kubernetes pod is a new node), so what a
	// departed node leaves behind must not be kept for ever.
	DefaultRetention = 10 * time.Minute
	// sentHistory is how many recent responses per node and type are
	// remembered to match an ACK or NACK to the version it answers.
	sentHistory = 8
	// assignedHistory is how many ECDS versions per node are remembered at
	// most. Versions older than the one a node last ACKed are forgotten
	// earlier: nothing can resolve to them any more.
	assignedHistory = 8
)

// Stream identifies one xDS stream. go-control-plane numbers state-of-the-world
// and delta streams separately, so the kind is part of the identity.
type Stream struct {
	ID    int64
	Delta bool
}

// Identity is what a node says about itself on its first request.
type Identity struct {
	ID      string
	Cluster string
	// Metadata is the node's metadata as plain values; treat as read-only.
	Metadata map[string]any
	// UserAgent is the build, e.g. "envoy/1.33.2".
	UserAgent string
}

// Request is a discovery request as far as the registry cares.
type Request struct {
	TypeURL string
	// Version is version_info (state of the world only): the version the
	// node has accepted.
	Version string
	// Nonce is response_nonce: the response this request answers. Empty on
	// the first request of a subscription.
	Nonce string
	// NACK is set when the request carries error_detail; Reason is its message.
	NACK   bool
	Reason string
	// Resources is initial_resource_versions (delta only): on a new stream,
	// the version of each resource of the type the node already has, where
	// state of the world reports one Version for the type.
	Resources map[string]string
}

// Registry records the fleet's state.
//
// All methods are safe for concurrent use. The feeding methods (StreamOpened,
// StreamClosed, Requested, Sent, Assigned) are called from xDS callbacks and
// never block beyond one short internal lock: events go to per-subscriber
// queues, never straight into a channel.
type Registry interface {
	// StreamOpened records a new stream; its node is known from its first request.
	StreamOpened(s Stream)
	// StreamClosed forgets a stream. When a node's last stream closes the node
	// is removed and NodeDisconnected is published; the assignments recorded
	// for it are kept for Config.Retention in case it comes back.
	StreamClosed(s Stream)
	// Requested records a request on s from node id. The first request of a
	// stream binds it to the node (NodeConnected if the node had no stream).
	// With a nonce it is an ACK (no error) or a NACK of the response sent with
	// that nonce; for ECDS the assignment recorded for that version resolves
	// it to filters and digests (Acked / Nacked events).
	Requested(s Stream, id Identity, r Request)
	// Sent records a response: its version and nonce. A version that differs
	// from the previous one sent starts a push, which the node's first
	// answer to it ends: how long that took is TypeStatus.LastAnswer and is
	// observed in Config.Metrics.
	Sent(s Stream, typeURL, version, nonce string)
	// Assigned records which assignment ECDS version ecdsVersion carries for
	// node. Call it before the snapshot with that version can reach the node.
	// If the node already reported running that version when no assignment
	// was known for it (it reconnected after Config.Retention, or to a
	// restarted control plane), the report is resolved now, with Acked
	// events.
	Assigned(node, ecdsVersion string, a types.Assignment)
	// Nodes returns every connected node, sorted by ID.
	Nodes() []NodeStatus
	// Node returns one connected node.
	Node(id string) (NodeStatus, bool)
	// Subscribe returns events from now until ctx ends, then the channel is
	// closed. Delivery never blocks the registry: each subscriber has its own
	// queue of up to Config.MaxQueued events. Past that the subscriber is
	// behind: events to it are dropped and counted in DroppedEvents, except
	// Answered events of nodes still connected, which no state can replay
	// (the order of a node's answers matters). Once it has read what was
	// queued it gets those answers, then one Resync event carrying the state
	// of every node as of that moment, then events as usual: so it misses
	// nothing it cannot rebuild, and rebuilds from a state that every later
	// event follows on from.
	Subscribe(ctx context.Context) <-chan Event
	// DroppedEvents counts events dropped for slow subscribers.
	DroppedEvents() uint64
}

// EventKind says what happened.
type EventKind int

const (
	// NodeConnected: the first stream of a node sent its first request.
	NodeConnected EventKind = iota + 1
	// NodeDisconnected: the last stream of a node closed.
	NodeDisconnected
	// Acked: the node accepted an ECDS version running Filter at Digest.
	Acked
	// Nacked: the node rejected an ECDS version that would run Filter at
	// Digest. Filter and Digest are empty when the rejected version changed
	// no module (only configuration), so no module can be blamed.
	Nacked
	// Answered: the node answered a listener, route or extension-config
	// response (TypeURL, Version, NACK), or started a subscription on a new
	// stream from Version, the one it last accepted (Report; Version is
	// empty for a node that has none). Every answer is published, also an
	// ACK of an identical re-send, which Acked does not count as a load.
	Answered
	// Resync: events to this subscriber were dropped (it fell behind);
	// Nodes is every connected node as of this event. A node whose Session
	// differs from the one the subscriber saw connect left and came back
	// meanwhile; Answered events of sessions that ended were dropped too.
	Resync
)

func (k EventKind) String() string {
	switch k {
	case NodeConnected:
		return "node-connected"
	case NodeDisconnected:
		return "node-disconnected"
	case Acked:
		return "acked"
	case Nacked:
		return "nacked"
	case Answered:
		return "answered"
	case Resync:
		return "resync"
	}
	return "unknown"
}

// Event is one change in the fleet.
type Event struct {
	Kind   EventKind
	Node   string
	Filter string
	Digest types.Digest
	// Version is the ECDS version acked or nacked; for Answered, the
	// version of TypeURL answered or reported.
	Version string
	Reason  string
	At      time.Time
	// TypeURL, NACK and Report describe an Answered event.
	TypeURL string
	NACK    bool
	Report  bool
	// Resources is, for the Report of a delta subscription, the version of
	// each resource the node has (Version is then empty); nil when it has
	// none. Treat as read-only.
	Resources map[string]string
	// Session identifies the node's connection for NodeConnected and
	// NodeDisconnected, as NodeStatus.Session does.
	Session uint64
	// Nodes is the state of every connected node, for Resync.
	Nodes []NodeStatus
}

// NodeStatus is a copy of what the registry knows about a node.
type NodeStatus struct {
	ID string
	// Session is unique to one connection of the node, from its first
	// stream's first request to its last stream's close.
	Session   uint64
	Cluster   string
	Metadata  map[string]any
	UserAgent string
	Streams   int
	FirstSeen time.Time
	LastSeen  time.Time
	// Types per resource type URL, sorted by type URL.
	Types []TypeStatus
	// Filters the node was sent over ECDS, sorted by name.
	Filters []FilterStatus
}

// TypeStatus is the exchange state of one resource type with a node.
type TypeStatus struct {
	TypeURL      string
	SentVersion  string
	SentNonce    string
	SentAt       time.Time
	AckedVersion string
	AckedAt      time.Time
	// LastNack is the most recent rejection, if any (it stays after later ACKs).
	LastNack *Nack
	// LastAnswer is how the node answered the last push it answered.
	LastAnswer *Answer
	// Resources is what a delta subscription reported having when it
	// started, by resource name, until the node ACKs a response of the type
	// (AckedVersion is set then): a delta node reports no AckedVersion on a
	// new stream.
	Resources map[string]string
}

// Answer is how a node answered a push: the first response that carried a
// new version of one resource type.
type Answer struct {
	Version string
	NACK    bool
	// SentAt is when the push was sent, At when the node answered it.
	SentAt time.Time
	At     time.Time
	// Latency is At - SentAt (nanoseconds in JSON).
	Latency time.Duration
}

// Nack is a rejected version and Envoy's reason.
type Nack struct {
	Version string
	Reason  string
	At      time.Time
}

// FilterStatus is what a node runs of one filter.
type FilterStatus struct {
	Filter string
	// Acked are the versions the node accepted last (zero before any ACK).
	Acked types.FilterVersions
	// Nacked lists the digests of the last rejected change to this filter,
	// cleared when a later version is accepted.
	Nacked []types.Digest
	Reason string
}

// Summary is one line for status output, e.g.
// "n1: auth acked 3f2a9c1b0d4e, transform NACKed 9c1b2d3e4f5a: <reason>".
func (n NodeStatus) Summary() string {
	var parts []string
	for _, f := range n.Filters {
		switch {
		case len(f.Nacked) > 0:
			short := make([]string, len(f.Nacked))
			for i, d := range f.Nacked {
				short[i] = d.Short()
			}
			parts = append(parts, fmt.Sprintf("%s NACKed %s: %s", f.Filter, strings.Join(short, "+"), f.Reason))
		case f.Acked.Stable != "" && f.Acked.Candidate != "":
			parts = append(parts, fmt.Sprintf("%s acked %s (+%s for %d/10000 of requests)",
				f.Filter, f.Acked.Stable.Short(), f.Acked.Candidate.Short(), f.Acked.CandidateShare))
		case f.Acked.Stable != "":
			parts = append(parts, fmt.Sprintf("%s acked %s", f.Filter, f.Acked.Stable.Short()))
		default:
			parts = append(parts, fmt.Sprintf("%s pending", f.Filter))
		}
	}
	if len(parts) == 0 {
		return n.ID + ": no filters"
	}
	return n.ID + ": " + strings.Join(parts, ", ")
}

// Config configures a registry.
type Config struct {
	Log *zap.Logger
	// Now stamps first/last seen and ACK/NACK times; nil means time.Now.
	Now func() time.Time
	// MaxQueued bounds each subscriber's queue; 0 means DefaultMaxQueued.
	MaxQueued int
	// Retention is how long the assignments of a node that left are kept;
	// 0 means DefaultRetention.
	Retention time.Duration
	// Metrics, when set, receives how long nodes take to answer pushes.
	Metrics *metrics.Metrics
}

// New returns an empty registry.
func New(cfg Config) Registry {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	return &registry{
		log:       cfg.Log.Named("fleet"),
		now:       cfg.Now,
		maxQueued: cfg.MaxQueued,
		retention: cfg.Retention,
		metrics:   cfg.Metrics,
		streams:   map[Stream]string{},
		nodes:     map[string]*node{},
		assigned:  map[string]*assignments{},
		subs:      map[*subscriber]struct{}{},
	}
}

type registry struct {
	log       *zap.Logger
	now       func() time.Time
	maxQueued int
	retention time.Duration
	metrics   *metrics.Metrics

	mu      sync.Mutex
	streams map[Stream]string // "" until the stream's first request
	nodes   map[string]*node
	// assigned is by node, kept across reconnects until the node has been
	// away for the retention period.
	assigned map[string]*assignments
	// departed lists, oldest first, when nodes with assignments were last
	// found away: the order in which their assignments expire.
	departed []departure
	subs     map[*subscriber]struct{}
	dropped  uint64
	// sessions numbers node connections (NodeStatus.Session).
	sessions uint64
}

var _ Registry = (*registry)(nil)

// assignments are the ECDS versions recorded for one node.
type assignments struct {
	versions []assignedVersion // newest last
	// away is when the node was last found without a stream; only the
	// departure with this time may expire the record.
	away time.Time
	// rejected is the ECDS version the node last NACKed, until it loads
	// another. Envoy keeps a rejected config as its latest, across stream
	// reconnects, and ACKs an identical re-send without loading it, so an
	// ACK (or a reconnect report) of that version is not news of what the
	// node runs. An Envoy that restarted reports no version and forgets it.
	rejected string
}

type assignedVersion struct {
	version string
	a       types.Assignment
}

type departure struct {
	node string
	at   time.Time
}

type node struct {
	id        Identity
	session   uint64
	streams   map[Stream]struct{}
	firstSeen time.Time
	lastSeen  time.Time
	types     map[string]*typeState
	filters   map[string]*FilterStatus
	// unresolved is an ECDS version the node reported running (or ACKed)
	// while no assignment was recorded for it; Assigned resolves it.
	unresolved string
}

type typeState struct {
	TypeStatus
	sent []sentResponse // newest last
	push push
	// subscribed is the delta stream whose subscription of the type
	// started: on it a request without a nonce is a subscription change,
	// not a new report.
	subscribed Stream
}

// push is the latest new version sent of one type, timed until answered.
type push struct {
	version  string
	at       time.Time
	answered bool
}

type sentResponse struct {
	stream  Stream
	nonce   string
	version string
}

func (r *registry) StreamOpened(s Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.streams[s] = ""
}

func (r *registry) StreamClosed(s Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.streams[s]
	delete(r.streams, s)
	if !ok || id == "" {
		return
	}
	n := r.nodes[id]
	if n == nil {
		return
	}
	delete(n.streams, s)
	if len(n.streams) == 0 {
		now := r.now()
		delete(r.nodes, id)
		r.away(id, now)
		r.expire(now)
		r.log.Info("node disconnected", zap.String("node", id))
		r.ended(id)
		r.publish(Event{Kind: NodeDisconnected, Node: id, At: now, Session: n.session})
	}
}

// away starts the retention period of a node's assignments: the node has no
// stream. The caller holds r.mu.
func (r *registry) away(id string, now time.Time) {
	h := r.assigned[id]
	if h == nil {
		return
	}
	h.away = now
	r.departed = append(r.departed, departure{node: id, at: now})
}

// expire forgets the assignments of nodes that have been away for the
// retention period. A node that came back since, or left again later, keeps
// them (a later departure covers it). The caller holds r.mu.
func (r *registry) expire(now time.Time) {
	k := 0
	for ; k < len(r.departed) && now.Sub(r.departed[k].at) >= r.retention; k++ {
		d := r.departed[k]
		if h := r.assigned[d.node]; h != nil && r.nodes[d.node] == nil && !h.away.After(d.at) {
			delete(r.assigned, d.node)
		}
	}
	// Clearing lets the node ids go now; reslicing drops the prefix for
	// good the next time append grows the array.
	clear(r.departed[:k])
	r.departed = r.departed[k:]
}

// bind returns the node a stream belongs to, binding it on its first request.
func (r *registry) bind(s Stream, id Identity) *node {
	bound, ok := r.streams[s]
	if ok && bound != "" {
		return r.nodes[bound]
	}
	if id.ID == "" {
		return nil
	}
	r.streams[s] = id.ID
	n := r.nodes[id.ID]
	if n == nil {
		now := r.now()
		r.sessions++
		n = &node{id: id, session: r.sessions, streams: map[Stream]struct{}{}, firstSeen: now, lastSeen: now,
			types: map[string]*typeState{}, filters: map[string]*FilterStatus{}}
		r.nodes[id.ID] = n
		r.expire(now)
		r.log.Info("node connected", zap.String("node", id.ID), zap.String("cluster", id.Cluster),
			zap.String("user_agent", id.UserAgent))
		r.publish(Event{Kind: NodeConnected, Node: id.ID, At: now, Session: n.session})
	}
	n.id = id
	n.streams[s] = struct{}{}
	return n
}

func (n *node) typeState(typeURL string) *typeState {
	ts := n.types[typeURL]
	if ts == nil {
		ts = &typeState{TypeStatus: TypeStatus{TypeURL: typeURL}}
		n.types[typeURL] = ts
	}
	return ts
}

// filter returns the node's status for a filter, adding it if new.
func (n *node) filter(name string) *FilterStatus {
	fs := n.filters[name]
	if fs == nil {
		fs = &FilterStatus{Filter: name}
		n.filters[name] = fs
	}
	return fs
}

func (r *registry) Nodes() []NodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusAll()
}

// statusAll copies every connected node's state, sorted by ID; the caller
// holds r.mu.
func (r *registry) statusAll() []NodeStatus {
	out := make([]NodeStatus, 0, len(r.nodes))
	for _, id := range slices.Sorted(maps.Keys(r.nodes)) {
		out = append(out, r.nodes[id].status())
	}
	return out
}

func (r *registry) Node(id string) (NodeStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[id]
	if n == nil {
		return NodeStatus{}, false
	}
	return n.status(), true
}

// status copies the node's state; the caller holds the registry lock.
func (n *node) status() NodeStatus {
	st := NodeStatus{
		ID: n.id.ID, Session: n.session, Cluster: n.id.Cluster, Metadata: maps.Clone(n.id.Metadata), UserAgent: n.id.UserAgent,
		Streams: len(n.streams), FirstSeen: n.firstSeen, LastSeen: n.lastSeen,
	}
	for _, t := range slices.Sorted(maps.Keys(n.types)) {
		ts := n.types[t].TypeStatus
		if ts.LastNack != nil {
			nack := *ts.LastNack
			ts.LastNack = &nack
		}
		if ts.LastAnswer != nil {
			answer := *ts.LastAnswer
			ts.LastAnswer = &answer
		}
		ts.Resources = maps.Clone(ts.Resources)
		st.Types = append(st.Types, ts)
	}
	for _, f := range slices.Sorted(maps.Keys(n.filters)) {
		fs := *n.filters[f]
		fs.Nacked = slices.Clone(fs.Nacked)
		st.Filters = append(st.Filters, fs)
	}
	return st
}

func (r *registry) DroppedEvents() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
