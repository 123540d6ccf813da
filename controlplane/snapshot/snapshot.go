package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/modserver"
	"github.com/wasmfleet/wasmfleet/controlplane/sequence"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Names Envoy sees. Other stages (the data-plane stand-in, the README's HCM
// snippet for ECDS-only mode) refer to resources by these.
const (
	// ModulesCluster is the cluster remote code is fetched through.
	ModulesCluster = "wasmfleet_modules"
	// WasmRuntime is the Wasm engine named in every VmConfig; v8 is the one
	// official Envoy builds include.
	WasmRuntime = "envoy.wasm.runtime.v8"
	// RouterFilter is the terminal HTTP filter after the slots.
	RouterFilter = "envoy.filters.http.router"
	// ModulePathPrefix is where the module server serves bytes by digest.
	ModulePathPrefix = modserver.PathPrefix
)

// SlotName is the HTTP filter (and ECDS resource) name of chain position p,
// or of its canary twin that holds a request-split candidate.
func SlotName(p int, canary bool) string {
	if canary {
		return slotPrefix + strconv.Itoa(p) + canarySuffix
	}
	return slotPrefix + strconv.Itoa(p)
}

// The parts of a slot's name (slotIndex reads them back).
const (
	slotPrefix   = "wasmfleet.slot."
	canarySuffix = ".canary"
)

// RouteConfigName is the RDS resource a managed listener's HCM refers to.
func RouteConfigName(listener string) string { return "wasmfleet.routes." + listener }

// ECDSName is a filter's resource name in ECDS-only mode.
func ECDSName(filter string) string { return "wasmfleet." + filter }

// RuntimeKey is the runtime key that can override a split's share.
func RuntimeKey(filter string) string { return "wasmfleet." + filter + ".candidate" }

// ErrInline is wrapped when a filter configured with inline code has no
// bytes available for its digest.
var ErrInline = errors.New("inline code unavailable")

// ErrUnknownFilter is wrapped when a layout names a filter the input has no
// settings for.
var ErrUnknownFilter = errors.New("filter not in the input")

// ErrLayout is wrapped when a layout's chain does not match its slots.
var ErrLayout = errors.New("chain link does not match its slot")

// ErrModuleURL is wrapped when Input.ModuleURL cannot be turned into the
// wasmfleet_modules cluster.
var ErrModuleURL = errors.New("invalid module base URL")

// Input is everything but the assignment that decides a node's resources.
type Input struct {
	Mode    config.Mode
	Managed config.Managed
	// ModuleURL is the base URL Envoy fetches ModuleURL + ModulePathPrefix + hex from.
	ModuleURL string
	// Filters in chain order, defaults applied (config.Filter.WithDefaults).
	// Filters absent from the assignment are skipped.
	Filters []config.Filter
	// Inline returns module bytes for filters with code: inline. The bytes
	// of a digest must never change (they are content-addressed), because
	// memoisation does not call Inline again for an input it has seen.
	Inline func(wtypes.Digest) ([]byte, error) `json:"-"`
}

// Builder builds per-node snapshots.
type Builder interface {
	// For returns a NodeBuilder for nodes that share in. The input is
	// hashed here, once, so a reconcile over 10,000 nodes hashes the shared
	// part of their resources once rather than per node. in must not be
	// modified while the NodeBuilder is in use. Safe for concurrent use.
	For(in Input) (NodeBuilder, error)
}

// NodeBuilder builds the snapshots of nodes that share one Input.
type NodeBuilder interface {
	// Build returns the snapshot for a node with this assignment, laid out
	// as for a node that runs nothing yet (sequence.Canonical). ECDS-only
	// mode has no routes to sequence and always builds this way.
	Build(a wtypes.Assignment) (*cache.Snapshot, error)
	// BuildLayout returns the snapshot of a managed node whose slots and
	// routes the sequencing stage chose. Snapshots for equal (input, layout)
	// are identical and memoised, because 10,000 nodes typically share a
	// handful of layouts: the returned snapshot may be shared with other
	// nodes and must not be modified. Its delta version map is already
	// built, so concurrent readers never write to it. Both methods are safe
	// for concurrent use.
	BuildLayout(l wtypes.Layout) (*cache.Snapshot, error)
}

// memoLimit bounds each generation of the memo. Two generations are kept, so
// between memoLimit and 2*memoLimit recent distinct inputs stay cached.
const memoLimit = 256

// NewBuilder returns a memoising Builder.
func NewBuilder() Builder {
	return &builder{cur: map[memoKey]*cache.Snapshot{}}
}

// builder memoises by (hash of the input, encoding of the assignment). Old
// entries age out in generations: when the current map is full it becomes
// the previous one and a hit there is promoted, which approximates LRU
// without per-hit bookkeeping.
type builder struct {
	mu   sync.Mutex
	cur  map[memoKey]*cache.Snapshot
	prev map[memoKey]*cache.Snapshot
}

// memoKey identifies a snapshot: the input's hash, shared by every node of a
// reconcile, and the node's layout as layoutKey encodes it.
type memoKey struct {
	in [sha256.Size]byte
	l  string
}

var _ Builder = (*builder)(nil)

func (b *builder) For(in Input) (NodeBuilder, error) {
	sum, err := inputHash(in)
	if err != nil {
		return nil, err
	}
	return &nodeBuilder{memo: b, in: in, sum: sum}, nil
}

// nodeBuilder is a builder bound to one input and its hash; it holds no
// mutable state of its own.
type nodeBuilder struct {
	memo *builder
	in   Input
	sum  [sha256.Size]byte
}

var _ NodeBuilder = (*nodeBuilder)(nil)

func (nb *nodeBuilder) Build(a wtypes.Assignment) (*cache.Snapshot, error) {
	return nb.BuildLayout(sequence.Canonical(slotPairs(nb.in.Managed), sequence.Wants(nb.in.Filters, a, nil)))
}

func (nb *nodeBuilder) BuildLayout(l wtypes.Layout) (*cache.Snapshot, error) {
	key := memoKey{in: nb.sum, l: layoutKey(l)}
	if s := nb.memo.lookup(key); s != nil {
		return s, nil
	}
	s, err := build(nb.in, l)
	if err != nil {
		return nil, err
	}
	nb.memo.store(key, s)
	return s, nil
}

func (b *builder) lookup(key memoKey) *cache.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.cur[key]; ok {
		return s
	}
	if s, ok := b.prev[key]; ok {
		b.storeLocked(key, s)
		return s
	}
	return nil
}

func (b *builder) store(key memoKey, s *cache.Snapshot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.storeLocked(key, s)
}

func (b *builder) storeLocked(key memoKey, s *cache.Snapshot) {
	if len(b.cur) >= memoLimit {
		b.prev, b.cur = b.cur, make(map[memoKey]*cache.Snapshot, memoLimit)
	}
	b.cur[key] = s
}

// inputHash hashes everything in the input but Inline. encoding/json writes
// map keys in order, so equal values give equal hashes.
func inputHash(in Input) ([sha256.Size]byte, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("snapshot: memo key: %w", err)
	}
	return sha256.Sum256(raw), nil
}

// layoutKey encodes a layout so that equal layouts, and only those, give
// equal keys: every string length-prefixed so no boundary can shift. It is
// the part of the memo key computed per node, so it avoids reflection.
func layoutKey(l wtypes.Layout) string {
	// A capacity guess: a short name and a 64-character digest per slot.
	buf := make([]byte, 0, 80*len(l.Slots)+24*len(l.Chain))
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(l.Slots)))
	for _, f := range l.Slots {
		str(f.Filter)
		str(string(f.Digest))
	}
	for _, ln := range l.Chain {
		buf = binary.AppendUvarint(buf, uint64(ln.Pair))
		str(ln.Filter)
		buf = binary.AppendVarint(buf, int64(ln.Share))
	}
	return string(buf)
}

// build makes the resources for the mode and wraps them in a snapshot whose
// per-type versions are content hashes, as are the per-resource versions of
// delta xDS (resourceVersion adds what managed-mode routes and slots run).
func build(in Input, l wtypes.Layout) (*cache.Snapshot, error) {
	var res map[resource.Type][]types.Resource
	var err error
	switch in.Mode {
	case config.ModeECDS:
		res, err = ecdsOnly(in, l)
	default:
		res, err = managed(in, l)
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	if in.Mode != config.ModeECDS {
		keys = slotKeys(in, l.Slots)
	}
	// Built here rather than by ConstructVersionMap, which would marshal
	// every resource (inline modules included) a second time.
	s := &cache.Snapshot{VersionMap: map[string]map[string]string{}}
	for typ, items := range res {
		h := sha256.New()
		each := make(map[string]string, len(items))
		for i, r := range items {
			b, err := cache.MarshalResource(r)
			if err != nil {
				return nil, fmt.Errorf("snapshot: marshal %s: %w", cache.GetResourceName(r), err)
			}
			// Length-prefix each resource so boundaries cannot shift.
			fmt.Fprintf(h, "%d:", len(b))
			h.Write(b)
			v := cache.HashResource(b)[:16]
			if keys != nil {
				v = resourceVersion(typ, v, l.Chain, keys, i)
			}
			each[cache.GetResourceName(r)] = v
		}
		v := hex.EncodeToString(h.Sum(nil))[:16]
		if keys != nil {
			switch typ {
			case resource.RouteType:
				v = routesVersion(v, l.Chain)
			case resource.ExtensionConfigType:
				v = slotsVersion(v, keys)
			}
		}
		s.Resources[cache.GetResponseType(typ)] = cache.NewResources(v, items)
		s.VersionMap[typ] = each
	}
	return s, nil
}
