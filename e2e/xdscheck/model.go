package xdscheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// The xDS types the model applies.
const (
	ListenerType  = resource.ListenerType
	RouteType     = resource.RouteType
	ClusterType   = resource.ClusterType
	ExtensionType = resource.ExtensionConfigType
)

// CanarySuffix ends the name of a slot that holds a request-split candidate
// (docs/xds-resources.md).
const CanarySuffix = ".canary"

// ErrUnsupported is wrapped when a response holds a type the model does not
// know; the Recorder NACKs it.
var ErrUnsupported = errors.New("xdscheck: unsupported")

// HeldKind says what kind of config a slot holds.
type HeldKind string

const (
	// HeldNothing: no config was ever applied to the slot.
	HeldNothing HeldKind = "nothing"
	// HeldNoop: a config that is not a Wasm filter, such as wasmfleet's
	// empty HeaderMutation placeholder.
	HeldNoop HeldKind = "no-op"
	// HeldWasm: a Wasm filter.
	HeldWasm HeldKind = "wasm"
)

// Held describes one config of a slot.
type Held struct {
	Kind HeldKind
	// Type is the typed_config's type URL (empty for HeldNothing).
	Type string
	// Plugin is the Wasm plugin config's name, which wasmfleet sets to the
	// filter's name; Code is the sha256 (hex) of the module: of the inline
	// bytes, or the remote source's sha256. Both empty unless HeldWasm.
	Plugin, Code string
}

func (h Held) String() string {
	switch h.Kind {
	case HeldWasm:
		c := h.Code
		if len(c) > 12 {
			c = c[:12]
		}
		return fmt.Sprintf("wasm %s@%s", h.Plugin, c)
	case HeldNoop:
		return "no-op " + strings.TrimPrefix(h.Type, resource.APITypePrefix)
	}
	return string(HeldNothing)
}

// SlotState is what one ECDS resource holds on the node.
type SlotState struct {
	// Running is the config the node runs in the slot.
	Running Held
	// Rejected, when set, is the last config the node received for the slot
	// and failed to load: the slot runs the config before it. Envoy skips
	// an identical re-send of it without loading it.
	Rejected *Held
}

// listenerState is one LDS listener: the latest config received and the one
// serving (they differ while the latest warms).
type listenerState struct {
	latest      *listenerpb.Listener
	latestHCMs  []*hcmpb.HttpConnectionManager
	serving     *listenerpb.Listener // nil until it warmed once
	servingHCMs []*hcmpb.HttpConnectionManager
}

// extState is one ECDS resource.
type extState struct {
	// ready: a response for the name arrived (applied or not), which is what
	// a warming listener waits for.
	ready bool
	cur   *anypb.Any // typed_config applied; nil: none
	held  Held       // of cur
	// received is the typed_config of the last update that got as far as
	// building a filter, whether that worked or not; rejected says it did not.
	received *anypb.Any
	rejected *Held
}

// model is what one Envoy holds, resource by resource, after the responses
// applied so far. Not safe for concurrent use.
type model struct {
	listeners  map[string]*listenerState
	routes     map[string]*routepb.RouteConfiguration
	routeReady map[string]bool
	clusters   map[string]*clusterpb.Cluster
	exts       map[string]*extState
	// nacked holds, per plugin name, the Wasm typed_configs the node failed
	// to load.
	nacked map[string][]*anypb.Any
	parsed map[*anypb.Any]*parsedExt
}

func newModel() *model {
	return &model{
		listeners:  map[string]*listenerState{},
		routes:     map[string]*routepb.RouteConfiguration{},
		routeReady: map[string]bool{},
		clusters:   map[string]*clusterpb.Cluster{},
		exts:       map[string]*extState{},
		nacked:     map[string][]*anypb.Any{},
		parsed:     map[*anypb.Any]*parsedExt{},
	}
}

// Fails decides whether a Wasm filter config fails to load on the node (a
// module that does not compile, on_vm_start or on_configure returning
// false, a sha256 mismatch): a non-nil error is the NACK's reason. slot is
// the ECDS resource name. It is called only for configs Envoy would build:
// not for no-ops, invalid configs or identical re-sends.
type Fails func(slot string, w *wasmfilter.Wasm) error

// apply applies one response as Envoy would and returns nil to ACK it or the
// reason to NACK it. For ECDS, rejected names the resource that stopped the
// response (those before it stay applied).
func (m *model) apply(typeURL string, resources []*anypb.Any, fails Fails) (rejected string, err error) {
	defer m.warm()
	switch typeURL {
	case ListenerType:
		err = m.applyListeners(resources)
	case RouteType:
		err = m.applyRoutes(resources)
	case ClusterType:
		err = m.applyClusters(resources)
	case ExtensionType:
		rejected, err = m.applyExtensions(resources, fails)
	default:
		err = fmt.Errorf("%w: type %s", ErrUnsupported, typeURL)
	}
	if err != nil {
		m.failed(typeURL)
	}
	return rejected, err
}

// reject records a response the node NACKed without applying any of it
// (any type but ECDS, whose partial application apply models).
func (m *model) reject(typeURL string) {
	m.failed(typeURL)
	m.warm()
}

// failed follows onConfigUpdateFailed: every subscription of the type counts
// as having had its first response, so listeners waiting on it may warm.
func (m *model) failed(typeURL string) {
	switch typeURL {
	case RouteType:
		for _, name := range m.names(RouteType) {
			m.routeReady[name] = true
		}
	case ExtensionType:
		for _, name := range m.names(ExtensionType) {
			m.ext(name).ready = true
		}
	}
}

// unpack decodes every resource of a response and checks it with the Envoy
// API's own validation, as Envoy rejects a response holding an invalid one.
func unpack[T proto.Message](typeURL string, resources []*anypb.Any, newT func() T) ([]T, error) {
	out := make([]T, 0, len(resources))
	for i, a := range resources {
		if a.GetTypeUrl() != typeURL {
			return nil, fmt.Errorf("resource %d: type %s in a %s response", i, a.GetTypeUrl(), typeURL)
		}
		m := newT()
		if err := a.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		if err := validate(m); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func validate(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		return v.ValidateAll()
	}
	return nil
}

func (m *model) applyListeners(resources []*anypb.Any) error {
	ls, err := unpack(ListenerType, resources, func() *listenerpb.Listener { return &listenerpb.Listener{} })
	if err != nil {
		return err
	}
	hcms := make([][]*hcmpb.HttpConnectionManager, len(ls))
	for i, l := range ls {
		if hcms[i], err = ads.HCMs(l); err != nil {
			return err
		}
		for _, h := range hcms[i] {
			if err := validate(h); err != nil {
				return fmt.Errorf("listener %s: %w", l.GetName(), err)
			}
		}
	}
	seen := map[string]bool{}
	for i, l := range ls {
		seen[l.GetName()] = true
		st, ok := m.listeners[l.GetName()]
		if !ok {
			st = &listenerState{}
			m.listeners[l.GetName()] = st
		}
		if st.latest != nil && proto.Equal(st.latest, l) {
			continue
		}
		st.latest, st.latestHCMs = l, hcms[i]
	}
	for name := range m.listeners {
		if !seen[name] {
			delete(m.listeners, name) // removed from LDS: drained
		}
	}
	return nil
}

func (m *model) applyRoutes(resources []*anypb.Any) error {
	rcs, err := unpack(RouteType, resources, func() *routepb.RouteConfiguration { return &routepb.RouteConfiguration{} })
	if err != nil {
		return err
	}
	for _, rc := range rcs {
		m.routes[rc.GetName()] = rc
		m.routeReady[rc.GetName()] = true
	}
	return nil
}

func (m *model) applyClusters(resources []*anypb.Any) error {
	cs, err := unpack(ClusterType, resources, func() *clusterpb.Cluster { return &clusterpb.Cluster{} })
	if err != nil {
		return err
	}
	m.clusters = make(map[string]*clusterpb.Cluster, len(cs))
	for _, c := range cs {
		m.clusters[c.GetName()] = c
	}
	return nil
}

func (m *model) ext(name string) *extState {
	x, ok := m.exts[name]
	if !ok {
		x = &extState{}
		m.exts[name] = x
	}
	return x
}

// names is what the listeners (latest and serving) reference of a type.
func (m *model) names(typeURL string) []string {
	var out []string
	for _, ls := range m.listeners {
		for _, h := range slices.Concat(ls.latestHCMs, ls.servingHCMs) {
			routes, exts := ads.Refs(h)
			switch typeURL {
			case RouteType:
				out = append(out, routes...)
			case ExtensionType:
				out = append(out, exts...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// warm makes every listener whose latest config has what it waits for the
// one serving.
func (m *model) warm() {
	for _, ls := range m.listeners {
		if ls.serving == ls.latest || !m.ready(ls.latestHCMs) {
			continue
		}
		ls.serving, ls.servingHCMs = ls.latest, ls.latestHCMs
	}
}

func (m *model) ready(hcms []*hcmpb.HttpConnectionManager) bool {
	for _, h := range hcms {
		routes, exts := ads.Refs(h)
		for _, r := range routes {
			if !m.routeReady[r] {
				return false
			}
		}
		for _, e := range exts {
			if x, ok := m.exts[e]; !ok || !x.ready {
				return false
			}
		}
	}
	return true
}
