package xdscheck

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// Event is one thing a node saw, in arrival order: a response and the
// node's answer to it, or a mark the test put in (Recorder.Mark).
type Event struct {
	// Mark, when set, labels the events after it (up to the next mark) as
	// one phase of the test, such as "request split starts". The other
	// fields are then empty.
	Mark string

	TypeURL, Version, Nonce string
	// Resources as received. Recordings share them: never modify one.
	Resources []*anypb.Any
	// NACK is the reason the node rejected the response (its
	// error_detail); empty for an ACK.
	NACK string
	// Rejected names the ECDS resource that stopped a NACKed ECDS response;
	// the ones before it were applied, the ones after it were not.
	Rejected string
}

// typeNames are the short names of the xDS types, for messages.
var typeNames = map[string]string{ListenerType: "LDS", RouteType: "RDS", ClusterType: "CDS", ExtensionType: "ECDS"}

func (e Event) String() string {
	if e.Mark != "" {
		return fmt.Sprintf("mark %q", e.Mark)
	}
	typ, ok := typeNames[e.TypeURL]
	if !ok {
		typ = e.TypeURL
	}
	s := fmt.Sprintf("%s version %s (%d resources): ", typ, e.Version, len(e.Resources))
	if e.NACK == "" {
		return s + "ACK"
	}
	if e.Rejected != "" {
		return s + "NACK at " + e.Rejected + ": " + e.NACK
	}
	return s + "NACK: " + e.NACK
}

// ErrLoad is wrapped by the reasons FailCode and FailPlugin give.
var ErrLoad = errors.New("wasm: failed to load")

// FailCode fails every Wasm config whose code has one of these sha256
// digests (hex), as a node that cannot load that module would.
func FailCode(digests ...string) Fails {
	return func(_ string, w *wasmfilter.Wasm) error {
		if d := CodeDigest(w); slices.Contains(digests, d) {
			return fmt.Errorf("%w: %s: module %.12s", ErrLoad, w.GetConfig().GetName(), d)
		}
		return nil
	}
}

// FailPlugin fails every Wasm config whose plugin name is one of names.
func FailPlugin(names ...string) Fails {
	return func(_ string, w *wasmfilter.Wasm) error {
		if slices.Contains(names, w.GetConfig().GetName()) {
			return fmt.Errorf("%w: %s: on_configure returned false", ErrLoad, w.GetConfig().GetName())
		}
		return nil
	}
}

// Recorder is a fake Envoy for e2e/internal/ads: it applies responses to a
// model of Envoy (no Wasm runs), answers ACK or NACK as Envoy would, and
// records every response with its answer. Handle and Names are called by
// the ADS client's goroutine; Mark, Events and View may be called from any
// goroutine.
//
// ECDS resources are applied independently of the response's answer, as
// Envoy does: a NACKed ECDS response keeps the resources before the one
// that failed.
type Recorder struct {
	fails Fails

	mu     sync.Mutex
	model  *model
	events []Event
	// interned shares identical resources between events: a node is sent
	// the same 2 MB module many times.
	interned map[[sha256.Size]byte]*anypb.Any
}

var _ ads.Handler = (*Recorder)(nil)

// NewRecorder returns a Recorder on which Wasm configs fail to load when
// fails says so; nil fails nothing.
func NewRecorder(fails Fails) *Recorder {
	return &Recorder{fails: fails, model: newModel(), interned: map[[sha256.Size]byte]*anypb.Any{}}
}

// Handle applies a response and records it with the answer.
func (r *Recorder) Handle(resp *discovery.DiscoveryResponse) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := Event{TypeURL: resp.GetTypeUrl(), Version: resp.GetVersionInfo(), Nonce: resp.GetNonce()}
	for _, a := range resp.GetResources() {
		ev.Resources = append(ev.Resources, r.intern(a))
	}
	rejected, err := r.model.apply(ev.TypeURL, ev.Resources, r.fails)
	if err != nil {
		ev.NACK, ev.Rejected = err.Error(), rejected
	}
	r.events = append(r.events, ev)
	return err
}

func (r *Recorder) intern(a *anypb.Any) *anypb.Any {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(a.GetTypeUrl()), a.GetTypeUrl())
	h.Write(a.GetValue())
	var key [sha256.Size]byte
	h.Sum(key[:0])
	if old, ok := r.interned[key]; ok {
		return old
	}
	r.interned[key] = a
	return a
}

// Names is what the listeners (latest and serving) reference: route
// configuration names for RDS, config_discovery filter names for ECDS.
func (r *Recorder) Names(typeURL string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.model.names(typeURL)
}

// Mark appends a mark that labels the events after it (Event.Mark).
func (r *Recorder) Mark(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Mark: label})
}

// Events returns the recording so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// View is what a node runs at one moment.
type View struct {
	// Slots holds every ECDS resource the node has heard of.
	Slots map[string]SlotState
	// Routes maps "listener/route" of every route of every serving
	// listener to the slots it runs, in HCM order.
	Routes map[string][]string
}

// View returns what the node runs now.
func (r *Recorder) View() View {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.model.view()
}

func (m *model) view() View {
	v := View{Slots: map[string]SlotState{}, Routes: map[string][]string{}}
	for _, name := range slices.Sorted(maps.Keys(m.exts)) {
		v.Slots[name] = m.slotState(name)
	}
	for _, sr := range m.served() {
		v.Routes[sr.listener+"/"+sr.route] = sr.running
	}
	return v
}
