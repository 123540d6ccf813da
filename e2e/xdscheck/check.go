package xdscheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
)

// Kind is what is wrong with a route at a moment.
type Kind string

const (
	// Missing: the route enables a slot its listener's HCM has no filter for.
	Missing Kind = "missing"
	// Empty: the route runs a slot that has no config (never had one, or
	// only ones the node rejected). Envoy answers such requests with 500.
	Empty Kind = "empty"
	// Noop: the route runs a slot holding a config that is not a Wasm
	// filter, such as the HeaderMutation placeholder of an unused slot: the
	// filter meant to be there is skipped.
	Noop Kind = "no-op"
	// Stale: the route runs a canary slot whose last config received was
	// rejected, so the slot runs the config before it, not the candidate.
	Stale Kind = "stale"
	// Nacked: the route runs a canary slot holding a config this node
	// failed to load before (for that filter, in any slot).
	Nacked Kind = "nacked"
	// Duplicate: two slots the route runs hold the same filter.
	Duplicate Kind = "duplicate"
	// Order: the route's filters, in HCM order, are none of the orders the
	// test allowed (a filter skipped, or the chain in a mixed order).
	Order Kind = "order"
)

// Violation is one thing wrong with one route over a run of moments.
type Violation struct {
	// Event is the index of the event after which the violation first
	// held; Cleared the index of the first event after which it no longer
	// did, or -1 if it still held at the end of the recording.
	Event, Cleared int
	// Phase is the label of the last mark before Event ("" before any).
	Phase string
	// Listener, RouteConfig and Route locate the route (Route is the
	// route's name, or "virtualhost[index]" for an unnamed route).
	Listener, RouteConfig, Route string
	// Slot is the slot at fault; for Duplicate every slot holding the
	// filter, comma-separated; empty for Order.
	Slot string
	Kind Kind
	// Held says what the slot held (Held.String, with the rejected config
	// when there is one), or for Duplicate and Order the route's filters.
	Held string
}

func (v Violation) String() string {
	until := "to the end"
	if v.Cleared >= 0 {
		until = fmt.Sprintf("until event %d", v.Cleared)
	}
	where := v.Listener + "/" + v.Route
	if v.Slot != "" {
		where += " " + v.Slot
	}
	return fmt.Sprintf("event %d (%q) %s: %s: %s", v.Event, v.Phase, until, v.Kind, where+": "+v.Held)
}

// Options are what a check allows beyond the rules every route must follow.
type Options struct {
	// Orders, when not nil, are the sequences of filter names (Wasm plugin
	// names, in HCM order) a route may run; a route running any other
	// sequence is an Order violation. Slots holding no Wasm filter are
	// left out of the sequence (they are violations of their own).
	Orders [][]string
	// PhaseOrders replaces Orders for the events of a phase (after a mark
	// with that label, up to the next mark).
	PhaseOrders map[string][][]string
}

func (o Options) orders(phase string) [][]string {
	if ors, ok := o.PhaseOrders[phase]; ok {
		return ors
	}
	return o.Orders
}

// ErrInconsistent is wrapped by Check when a recorded answer does not
// follow from Envoy's rules: an ACK of a response Envoy would reject, or a
// NACKed ECDS response whose Rejected resource Envoy would not have stopped
// at.
var ErrInconsistent = errors.New("xdscheck: recording inconsistent with Envoy")

// Check replays events in order and, after every response, checks every
// route of every serving listener. It returns the violations in the order
// they began; a violation that holds across many events is reported once,
// with the event it began and the one it cleared at. An error means the
// recording cannot be replayed past the event it names; the violations
// found before it are returned with it.
func Check(events []Event, opts Options) ([]Violation, error) {
	m := newModel()
	var out []Violation
	open := map[Violation]int{} // identity (no indices) -> index in out
	phase := ""
	for i, ev := range events {
		if ev.Mark != "" {
			phase = ev.Mark
			continue
		}
		if err := m.replay(ev); err != nil {
			return out, fmt.Errorf("event %d (%s version %s): %w", i, ev.TypeURL, ev.Version, err)
		}
		now := map[Violation]bool{}
		for _, v := range m.check(opts.orders(phase)) {
			now[v] = true
			if _, ok := open[v]; ok {
				continue
			}
			open[v] = len(out)
			v.Event, v.Cleared, v.Phase = i, -1, phase
			out = append(out, v)
		}
		for v, idx := range open {
			if !now[v] {
				out[idx].Cleared = i
				delete(open, v)
			}
		}
	}
	return out, nil
}

// replay applies a recorded response and its answer.
func (m *model) replay(ev Event) error {
	if ev.TypeURL != ExtensionType {
		if ev.NACK != "" {
			m.reject(ev.TypeURL)
			return nil
		}
		if _, err := m.apply(ev.TypeURL, ev.Resources, nil); err != nil {
			return fmt.Errorf("%w: ACKed, but Envoy would reject it: %w", ErrInconsistent, err)
		}
		return nil
	}
	recorded := errors.New(ev.NACK)
	fails := func(slot string, _ *wasmfilter.Wasm) error {
		if ev.NACK != "" && slot == ev.Rejected {
			return recorded
		}
		return nil
	}
	rejected, err := m.apply(ev.TypeURL, ev.Resources, fails)
	switch {
	case ev.NACK == "" && err != nil:
		return fmt.Errorf("%w: ACKed, but Envoy would reject it: %w", ErrInconsistent, err)
	case ev.NACK != "" && err == nil && ev.Rejected == "":
		return fmt.Errorf("%w: NACKed, but Envoy would apply all of it (Event.Rejected names no resource)", ErrInconsistent)
	case ev.NACK != "" && err == nil:
		return fmt.Errorf("%w: NACKed at %s, which Envoy would not build (absent, a no-op, or identical to the last config received)", ErrInconsistent, ev.Rejected)
	case ev.NACK != "" && rejected != ev.Rejected:
		return fmt.Errorf("%w: NACKed at %q, but Envoy stops at %q: %w", ErrInconsistent, ev.Rejected, rejected, err)
	}
	return nil
}

// check lists what is wrong now, without event indices.
func (m *model) check(orders [][]string) []Violation {
	var out []Violation
	for _, sr := range m.served() {
		at := Violation{Listener: sr.listener, RouteConfig: sr.routeConfig, Route: sr.route}
		add := func(kind Kind, slot, held string) {
			v := at
			v.Kind, v.Slot, v.Held = kind, slot, held
			out = append(out, v)
		}
		for _, slot := range sr.missing {
			add(Missing, slot, "no such HTTP filter in the listener")
		}
		var seq []string
		holders := map[string][]string{}
		for _, slot := range sr.running {
			st := m.slotState(slot)
			held := st.Running.String()
			if st.Rejected != nil {
				held += fmt.Sprintf(" (the last config received, %s, was rejected)", st.Rejected)
			}
			switch st.Running.Kind {
			case HeldNothing:
				add(Empty, slot, held)
				continue
			case HeldNoop:
				add(Noop, slot, held)
				continue
			}
			plugin := st.Running.Plugin
			seq = append(seq, plugin)
			holders[plugin] = append(holders[plugin], slot)
			if !strings.HasSuffix(slot, CanarySuffix) {
				continue
			}
			if st.Rejected != nil {
				add(Stale, slot, held)
			}
			if m.wasNacked(plugin, m.exts[slot].cur) {
				add(Nacked, slot, held+"; this node NACKed that config before")
			}
		}
		for _, plugin := range seq {
			if slots := holders[plugin]; len(slots) > 1 {
				add(Duplicate, strings.Join(slots, ","), fmt.Sprintf("%s runs %d times: %s", plugin, len(slots), strings.Join(seq, ",")))
				delete(holders, plugin)
			}
		}
		if orders != nil && !slices.ContainsFunc(orders, func(o []string) bool { return slices.Equal(o, seq) }) {
			add(Order, "", "runs ["+strings.Join(seq, ",")+"]")
		}
	}
	return out
}
