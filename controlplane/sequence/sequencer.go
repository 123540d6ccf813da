package sequence

import (
	"errors"
	"fmt"
	"slices"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Kind is the part of a node's configuration an answer is about.
type Kind int

const (
	// Listeners (LDS): only whether the node has any tells a reconnect from
	// a fresh start.
	Listeners Kind = iota + 1
	// Routes (RDS): which slots the routes enable.
	Routes
	// Slots (ECDS): the config in each slot.
	Slots
)

// ErrNoRoom is wrapped when a node's chain cannot be laid out without
// disabling a slot a route may still enable: the chain is longer than the
// free slot pairs allow.
var ErrNoRoom = errors.New("no free slot pairs for a make-before-break change")

// Sequencer holds what each node has confirmed and decides what it may be
// sent next. It is not safe for concurrent use: one goroutine owns it.
type Sequencer struct {
	nodes map[string]*node
}

// New returns a sequencer that knows no node yet.
func New() *Sequencer {
	return &Sequencer{nodes: map[string]*node{}}
}

// node is the sequencer's view of one connected node.
type node struct {
	// ready is false until the node's live state is known (Reported).
	ready               bool
	sawRoutes, sawSlots bool
	pairs               int
	ackedRoutes         []types.Link
	ackedRoutesKnown    bool
	inflight            [][]types.Link // routes set since the last answer, oldest first
	loaded, suspect     map[int]string // slot -> config key
	sentSlots           []types.SlotFill
	sentKeys            []string
}

// Step is what a node may be sent now.
type Step struct {
	Layout types.Layout
	// keys are the config keys of Layout.Slots ("" for the no-op).
	keys []string
}

// Connected starts tracking a node whose stream just opened: nothing is
// sent to it until it reported what it runs (Reported).
func (s *Sequencer) Connected(id string) {
	s.nodes[id] = &node{loaded: map[int]string{}, suspect: map[int]string{}}
}

// Forget drops a node whose last stream closed.
func (s *Sequencer) Forget(id string) { delete(s.nodes, id) }

// Reported records what a node's new subscription started from (its first
// request on a stream): runs is false for a node that has nothing of that
// kind yet. For Routes and Slots, content is what the builder decoded from
// the version the node reported (ParseRoutes, ParseSlots; from a delta
// stream, the resource versions: ParseRouteVersions, ParseSlotVersions); ok
// is false when it could not, for a version this control plane did not
// make. It reports whether the node became ready.
//
// A node with no listeners, no routes or no filter configs yet runs nothing
// a change could break (its listeners warm until every slot has its first
// config), so any empty report makes it ready at once; a node that has all
// three is ready once it reported its routes and slots.
func (s *Sequencer) Reported(id string, k Kind, runs bool, routes []types.Link, slots []string, ok bool) bool {
	n := s.nodes[id]
	if n == nil || n.ready {
		return false
	}
	if !runs {
		n.ready = true
		return true
	}
	switch k {
	case Routes:
		n.sawRoutes = true
		if ok {
			n.ackedRoutes, n.ackedRoutesKnown = routes, true
		}
	case Slots:
		n.sawSlots = true
		if ok {
			n.pairs = len(slots) / 2
			for i, key := range slots {
				if key != "" {
					n.loaded[i] = key
				}
			}
		}
	}
	n.ready = n.sawRoutes && n.sawSlots
	return n.ready
}

// AnsweredRoutes records a node's ACK (nack false) or NACK of the routes it
// was sent.
func (s *Sequencer) AnsweredRoutes(id string, chain []types.Link, nack bool) {
	n := s.nodes[id]
	if n == nil {
		return
	}
	// Envoy answers in order: routes set before the answered ones were
	// superseded. After a NACK it keeps what it had, but the NACKed routes
	// stay in flight: go-control-plane answers a NACK (a request whose
	// version is the last one accepted) by sending the snapshot's version
	// again (snapshotCache.CreateWatch responds when the versions differ),
	// and the node may accept it this time.
	if i := slices.IndexFunc(n.inflight, func(c []types.Link) bool { return slices.Equal(c, chain) }); i >= 0 {
		if nack {
			n.inflight = slices.Delete(n.inflight, 0, i)
		} else {
			n.inflight = slices.Delete(n.inflight, 0, i+1)
		}
	}
	if !nack {
		n.ackedRoutes, n.ackedRoutesKnown = chain, true
	}
}

// AnsweredSlots records a node's ACK or NACK of slot configs (keys per
// slot, "" for the no-op).
//
// A NACK leaves every slot it would have changed unconfirmed: Envoy stops at
// the first config that fails, so the ones before it in the response loaded
// and the ones after did not, and the response does not say which failed.
// Envoy then ACKs an identical re-send without loading the failed config
// (FilterConfigSubscription::onConfigUpdate skips a config equal to the last
// one received), so a slot whose key the node NACKed is confirmed only by an
// ACK of a different key.
func (s *Sequencer) AnsweredSlots(id string, keys []string, nack bool) {
	n := s.nodes[id]
	if n == nil {
		return
	}
	for i, key := range keys {
		switch {
		case nack:
			if n.loaded[i] != key {
				delete(n.loaded, i)
				n.suspect[i] = key
			}
		case n.suspect[i] == key:
			delete(n.loaded, i) // maybe a re-send skipped without loading
		default:
			delete(n.suspect, i)
			n.loaded[i] = key
		}
	}
}

// Next returns what node id may be sent now so that it converges on wants
// (its chain, in order) without a route ever enabling a slot it has not
// loaded with the config that route expects. pairs is the number of slot
// pairs a node's listeners get when they have none yet (more if the chain is
// longer); a node keeps the number it has, so its listeners never lose a
// slot and never drain for a rollout. ok is false while the node's live
// state is not known yet. The caller sends the step and calls Sent.
func (s *Sequencer) Next(id string, pairs int, wants []Want) (step Step, ok bool, err error) {
	n := s.nodes[id]
	if n == nil || !n.ready {
		return Step{}, false, nil
	}
	if n.pairs == 0 {
		n.pairs = max(pairs, len(wants))
	}
	live := n.live()
	pos, err := n.place(wants, live)
	if err != nil {
		return Step{}, false, fmt.Errorf("sequence: %d filters in %d slot pairs: %w", len(wants), n.pairs, err)
	}
	keys := make([]string, 2*n.pairs)
	l := layoutOf(n.pairs, wants, pos, func(slot int) types.SlotFill {
		f, enabled := live[slot]
		if !enabled {
			return types.SlotFill{}
		}
		fill, key := n.keep(slot, f, wants)
		keys[slot] = key
		return fill
	})
	for i, w := range wants {
		keys[2*pos[i]] = w.StableKey
		if w.split() {
			keys[2*pos[i]+1] = w.CandidateKey
		}
	}
	fresh := !n.ackedRoutesKnown && len(n.inflight) == 0
	if !fresh && !n.routable(l.Chain, keys, live) {
		l.Chain = n.current()
	}
	return Step{Layout: l, keys: keys}, true, nil
}

// Sent records that step was handed to the xDS cache: from now on the node
// may receive (and run) its routes at any moment.
func (s *Sequencer) Sent(id string, step Step) {
	n := s.nodes[id]
	if n == nil {
		return
	}
	n.sentSlots, n.sentKeys = step.Layout.Slots, step.keys
	if chain := step.Layout.Chain; !slices.Equal(n.current(), chain) || !n.ackedRoutesKnown && len(n.inflight) == 0 {
		// Routes equal to the newest the node may run have the same
		// version: the cache sends nothing for them. The routes in flight
		// matter as a set; keeping each chain once bounds it for a client
		// that never answers routes.
		n.inflight = slices.DeleteFunc(n.inflight, func(c []types.Link) bool { return slices.Equal(c, chain) })
		n.inflight = append(n.inflight, chain)
	}
}

// live maps every slot a route may be enabling on the node (the routes it
// ACKed and every one sent since) to the filter that route expects there.
func (n *node) live() map[int]string {
	out := map[int]string{}
	add := func(chain []types.Link) {
		for _, l := range chain {
			out[2*l.Pair] = l.Filter
			if l.Split() {
				out[2*l.Pair+1] = l.Filter
			}
		}
	}
	add(n.ackedRoutes)
	for _, c := range n.inflight {
		add(c)
	}
	return out
}

// current is the newest routes the node may be running.
func (n *node) current() []types.Link {
	if len(n.inflight) > 0 {
		return n.inflight[len(n.inflight)-1]
	}
	return n.ackedRoutes
}

// keep returns what a slot that a route may enable keeps while that route
// lasts: what it was last sent, when that was the expected filter; else
// (after a restart, which knows the key but not the module) the filter's
// wanted stable version, another version of the same filter; else the no-op,
// for a filter that is gone, whose routes then change first (RDS goes out
// before ECDS).
func (n *node) keep(slot int, filter string, wants []Want) (types.SlotFill, string) {
	if slot < len(n.sentSlots) && n.sentSlots[slot].Filter == filter {
		return n.sentSlots[slot], n.sentKeys[slot]
	}
	for _, w := range wants {
		if w.Filter == filter {
			return types.SlotFill{Filter: filter, Digest: w.Stable}, w.StableKey
		}
	}
	return types.SlotFill{}, ""
}

// routable reports whether routes enabling chain may be sent: every slot
// they enable holds, confirmed, the config planned for it; or it is a slot
// the routes already enable for the same filter whose in-place update the
// node rejected, where Envoy keeps running the filter's previous config.
func (n *node) routable(chain []types.Link, keys []string, live map[int]string) bool {
	ok := func(slot int, filter string) bool {
		key := keys[slot]
		return key != "" && (n.loaded[slot] == key || n.suspect[slot] == key && live[slot] == filter)
	}
	for _, l := range chain {
		if !ok(2*l.Pair, l.Filter) || l.Split() && !ok(2*l.Pair+1, l.Filter) {
			return false
		}
	}
	return true
}

// Placement costs: a pair the routes already enable for the filter needs
// no new slot; a free pair already loaded with the config needs only the
// route change; any other free pair a load first; a pair whose config the
// node rejected is tried last.
const (
	costInPlace  = 0
	costLoaded   = 1
	costFill     = 2
	costRejected = 16
	infeasible   = 1 << 30
)

// place chooses a slot pair per wanted filter, in increasing order (HTTP
// filters run in slot order), never taking a pair that a route may enable
// for another filter, at the lowest total cost; ties go to lower pairs.
func (n *node) place(wants []Want, live map[int]string) ([]int, error) {
	k, pairs := len(wants), n.pairs
	if k == 0 {
		return nil, nil
	}
	if k > pairs {
		return nil, ErrNoRoom
	}
	cost := func(i, p int) int {
		f := wants[i].Filter
		for _, s := range []int{2 * p, 2*p + 1} {
			if g, ok := live[s]; ok && g != f {
				return infeasible
			}
		}
		stable, canary := wants[i].keys()
		c := costFill
		switch {
		case live[2*p] == f:
			c = costInPlace
		case n.loaded[2*p] == stable:
			c = costLoaded
		case n.suspect[2*p] == stable:
			c = costRejected
		}
		if wants[i].split() && n.suspect[2*p+1] == canary {
			c += costRejected
		}
		return c
	}
	// best[i][p]: lowest cost of placing wants[0..i] with wants[i] at p.
	best := make([][]int, k)
	from := make([][]int, k)
	for i := range k {
		best[i], from[i] = make([]int, pairs), make([]int, pairs)
		for p := range pairs {
			best[i][p], from[i][p] = infeasible, -1
			c := cost(i, p)
			if c >= infeasible {
				continue
			}
			if i == 0 {
				best[i][p] = c
				continue
			}
			for q := range p {
				if b := best[i-1][q]; b < infeasible && b+c < best[i][p] {
					best[i][p], from[i][p] = b+c, q
				}
			}
		}
	}
	end := -1
	for p := range pairs {
		if best[k-1][p] < infeasible && (end < 0 || best[k-1][p] < best[k-1][end]) {
			end = p
		}
	}
	if end < 0 {
		return nil, ErrNoRoom
	}
	pos := make([]int, k)
	for i := k - 1; i >= 0; i-- {
		pos[i] = end
		end = from[i][end]
	}
	return pos, nil
}
