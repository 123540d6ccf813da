package standin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	wasmfilterpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
	"github.com/wasmfleet/wasmfleet/e2e/internal/ads"
)

// Type URLs of the filter configs the stand-in understands.
const (
	WasmType           = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
	HeaderMutationType = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
)

// Errors a Wasm filter config can fail with, in ExtensionStatus and NACKs.
var (
	// ErrCodeCacheMiss: remote code not cached and nack_on_code_cache_miss set.
	ErrCodeCacheMiss = errors.New("wasm: code cache miss")
	// ErrDigestMismatch: fetched code does not hash to the configured sha256.
	ErrDigestMismatch = errors.New("wasm: sha256 mismatch")
	// ErrNotFetched: uncached remote code replaced a filter on a serving
	// listener, where Envoy never starts the fetch (CodeNotFetched).
	ErrNotFetched = errors.New("wasm: not fetched: remote code on a serving listener (Envoy does not start the fetch)")
)

// slot is one ECDS resource: the config it runs, the last one it received
// and its status.
type slot struct {
	// received is the typed_config of the last update that got as far as
	// building a filter, whether the build worked or not. Envoy keeps the
	// same thing (FilterConfigSubscription's last_ config hash) and ACKs a
	// re-sent identical config without building it again. It is forgotten
	// with the slot's watch (syncWatches).
	received *anypb.Any
	cur      *slotConfig
	status   dataplane.ExtensionStatus
}

// slotConfig is one accepted config of a slot. It never changes; a state
// change (code fetched, fetch failed) installs a new slotConfig. refs counts
// the requests using it so that its VMs close only after they finish.
type slotConfig struct {
	vm       vm // nil unless the code is loaded
	state    dataplane.CodeState
	failOpen bool
	refs     sync.WaitGroup
}

// newStream returns the filter for one request, or nil when the filter is
// skipped: the no-op placeholder, FAIL_OPEN without a VM, or code that was
// not fetched (Envoy's PluginConfig::createContext returns no context
// without a plugin handle, and the filter lets the request through).
func (sc *slotConfig) newStream(rs *routeState) (filterStream, error) {
	switch {
	case sc.vm != nil:
		return sc.vm.newStream(rs)
	case sc.state == dataplane.CodeFailed && !sc.failOpen:
		return failClosed{}, nil
	}
	return nil, nil
}

// retire closes sc's VMs once the requests holding it are done. Callers
// have already removed sc from its slot, so no request can take a new ref.
func (n *node) retire(sc *slotConfig) {
	if sc.vm == nil {
		return
	}
	n.goBackground(func() {
		sc.refs.Wait()
		sc.vm.close()
	})
}

// applyExtensions follows GrpcMuxImpl::processDiscoveryResources: it
// visits the watches in the mux's order (watchOrder: the most recently
// started first, whatever the order of the resources in the response) and
// hands each the resource with its name. A watch whose name is not in the
// response is not visited and keeps its config (state of the world), and a
// resource no watch asks for is ignored. The first resource that fails ends
// the response (THROW_IF_NOT_OK in the mux's loop): the watches visited
// before it keep their new configs, it and the ones after it keep their
// previous ones, and the response is NACKed with its reason alone. The
// configs after it apply when the control plane sends the response again,
// where the failed one is then skipped as the last config received.
//
// A delta response is applied the same way, and then its removals: Envoy's
// WatchMap::onConfigUpdate (delta form,
// source/extensions/config_subscription/grpc/watch_map.cc) calls the
// watches with additions before the ones with removals only, in hash-map
// order, which the stand-in does not imitate.
func (n *node) applyExtensions(version string, msgs []proto.Message, removed []string) error {
	byName := make(map[string]*core.TypedExtensionConfig, len(msgs))
	for _, m := range msgs {
		tec := m.(*core.TypedExtensionConfig)
		if _, dup := byName[tec.GetName()]; !dup {
			byName[tec.GetName()] = tec
		}
	}
	for _, name := range n.watchOrder() {
		tec, ok := byName[name]
		if !ok {
			continue
		}
		if err := n.applyExtension(version, tec); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	n.removeExtensions(removed)
	return nil
}

// removeExtensions follows FilterConfigSubscription::onConfigUpdate for a
// delta removal (source/common/filter/config_discovery_impl.cc): the
// subscription forgets the last config it received, and each filter using
// it falls back to its default config (onConfigRemoved), which wasmfleet's
// listeners never set, so the slot has none: a route enabling it answers
// 500 (missingConfig) until a config arrives. The watch stays ready, and a
// name no watch asks for reaches no one.
func (n *node) removeExtensions(names []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, name := range names {
		s := n.slots[name]
		if n.watches[name] == nil || s == nil {
			continue
		}
		if s.cur != nil {
			n.retire(s.cur)
		}
		delete(n.slots, name)
	}
}

// applyExtension follows FilterConfigSubscription::onConfigUpdate: a config
// equal to the last one received is accepted and changes nothing; a config
// that fails validation is rejected and forgotten; a config that passes
// validation becomes the last one received before its filter is built, so
// a build failure rejects it once and an identical re-send is accepted
// without building it, the previous filter still running.
func (n *node) applyExtension(version string, tec *core.TypedExtensionConfig) error {
	name := tec.GetName()
	n.mu.RLock()
	s := n.slots[name]
	same := s != nil && s.received != nil && proto.Equal(s.received, tec.GetTypedConfig())
	n.mu.RUnlock()
	if same {
		n.mu.Lock()
		s.status.Error = ""
		n.mu.Unlock()
		return nil
	}
	st := dataplane.ExtensionStatus{Type: tec.GetTypedConfig().GetTypeUrl(), Version: version}
	var (
		sc         *slotConfig
		background func()
	)
	p, err := parse(name, tec)
	built := err == nil
	if built {
		sc, background, err = n.build(p, &st)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s = n.slots[name]
	if s == nil {
		s = &slot{}
		n.slots[name] = s
	}
	if built {
		s.received = tec.GetTypedConfig()
	}
	if err != nil {
		s.status.Error = err.Error()
		return err
	}
	old := s.cur
	s.cur, s.status = sc, st
	if w := n.watches[name]; w != nil {
		// The config is in place: the subscription's init target is ready.
		w.markReady()
	}
	if old != nil {
		n.retire(old)
	}
	if background != nil {
		n.goBackground(background)
	}
	return nil
}

// filterPlan is a validated ECDS config: the no-op placeholder (wasm nil)
// or a Wasm filter.
type filterPlan struct {
	slot string
	wasm *wasmpb.PluginConfig
}

// parse unpacks and validates a resource, as Envoy does before it builds
// anything (FilterConfigProviderManager::getMessage, validateMessage).
func parse(name string, tec *core.TypedExtensionConfig) (filterPlan, error) {
	p := filterPlan{slot: name}
	inner, err := tec.GetTypedConfig().UnmarshalNew()
	if err == nil {
		err = validate(inner)
	}
	if err != nil {
		return p, err
	}
	switch c := inner.(type) {
	case *headermutationpb.HeaderMutation:
		if c.GetMutations() != nil {
			return p, fmt.Errorf("header_mutation with mutations: %w", errUnsupported)
		}
	case *wasmfilterpb.Wasm:
		if c.GetConfig().GetVmConfig() == nil {
			return p, fmt.Errorf("wasm: vm_config is required: %w", errUnsupported)
		}
		p.wasm = c.GetConfig()
	default:
		return p, fmt.Errorf("typed_config %s: %w", tec.GetTypedConfig().GetTypeUrl(), errUnsupported)
	}
	return p, nil
}

// build makes the config to install and fills in st. Inline and cached code
// is loaded now (a failure rejects the update). Uncached remote code is
// fetched in the background (the returned func) while no serving listener
// runs the slot, which is when Envoy's fetch can hold a warming listener;
// on a serving listener Envoy never fetches it, and the filter is skipped.
func (n *node) build(p filterPlan, st *dataplane.ExtensionStatus) (*slotConfig, func(), error) {
	pc := p.wasm
	if pc == nil {
		return &slotConfig{}, nil, nil
	}
	vmc := pc.GetVmConfig()
	spec := pluginSpec{slot: p.slot, name: pc.GetName(), rootID: pc.GetRootId(), vmID: vmc.GetVmId()}
	var err error
	if spec.vmConfig, err = anyBytes(vmc.GetConfiguration()); err != nil {
		return nil, nil, fmt.Errorf("wasm: vm configuration: %w", err)
	}
	if spec.configuration, err = anyBytes(pc.GetConfiguration()); err != nil {
		return nil, nil, fmt.Errorf("wasm: plugin configuration: %w", err)
	}
	// FAIL_RELOAD falls back to FAIL_CLOSED for everything but a VM that
	// failed at run time; the stand-in never reloads (SIMPLIFICATIONS.md).
	spec.failOpen = pc.GetFailurePolicy() == wasmpb.FailurePolicy_FAIL_OPEN ||
		pc.GetFailurePolicy() == wasmpb.FailurePolicy_UNSPECIFIED && pc.GetFailOpen()
	// Envoy: WasmConfig's constructor (source/extensions/common/wasm/plugin.cc)
	// merges key_values into the VM's environment; Context's constructor
	// (source/extensions/common/wasm/context.cc) reads
	// allow_on_headers_stop_iteration, default false.
	spec.env = vmc.GetEnvironmentVariables().GetKeyValues()
	spec.allowHeadersStop = pc.GetAllowOnHeadersStopIteration().GetValue()

	code, digest, err := n.codeNow(vmc)
	st.Digest = digest
	switch {
	case err != nil:
		return nil, nil, err
	case code != nil:
		v, err := n.host.load(n.ctx, spec, code, digest)
		if err != nil {
			return nil, nil, err
		}
		st.Code = dataplane.CodeReady
		return &slotConfig{vm: v, state: dataplane.CodeReady}, nil, nil
	case vmc.GetNackOnCodeCacheMiss():
		n.startPrefetch(vmc.GetCode().GetRemote())
		return nil, nil, fmt.Errorf("%w: sha256 %s (fetching)", ErrCodeCacheMiss, digest)
	case n.serving(p.slot):
		st.Code, st.CodeError = dataplane.CodeNotFetched, ErrNotFetched.Error()
		n.log.Warn("wasm code not fetched", zap.String("filter", p.slot), zap.String("digest", digest))
		return &slotConfig{state: dataplane.CodeNotFetched}, nil, nil
	}
	pending := &slotConfig{state: dataplane.CodePending, failOpen: spec.failOpen}
	st.Code = dataplane.CodePending
	remote := vmc.GetCode().GetRemote()
	return pending, func() { n.fetchAndLoad(p.slot, pending, spec, remote) }, nil
}

// serving reports whether a serving listener runs the slot name.
func (n *node) serving(name string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, ls := range n.listeners {
		if ls.active == nil {
			continue
		}
		if _, exts := ads.Refs(ls.active.hcm); slices.Contains(exts, name) {
			return true
		}
	}
	return false
}

// codeNow returns the module bytes if they are at hand: inline, or remote
// and cached. For uncached remote code it returns nil bytes and the digest.
func (n *node) codeNow(vmc *wasmpb.VmConfig) ([]byte, string, error) {
	code := vmc.GetCode()
	if local := code.GetLocal(); local != nil {
		var b []byte
		switch {
		case local.GetInlineBytes() != nil:
			b = local.GetInlineBytes()
		case local.GetInlineString() != "":
			b = []byte(local.GetInlineString())
		default:
			return nil, "", fmt.Errorf("wasm: local code must be inline: %w", errUnsupported)
		}
		return b, string(wftypes.DigestOf(b)), nil
	}
	remote := code.GetRemote()
	if remote == nil {
		return nil, "", fmt.Errorf("wasm: vm_config.code is empty")
	}
	digest := strings.ToLower(remote.GetSha256())
	n.mu.RLock()
	b := n.codeCache[digest]
	n.mu.RUnlock()
	return b, digest, nil
}

// fetchAndLoad fetches remote code for a pending config and installs the
// loaded filter, or a failed one that follows failure_policy, unless the
// slot has moved on to another config meanwhile. Then the listeners that
// were warming for it may start serving.
func (n *node) fetchAndLoad(name string, pending *slotConfig, spec pluginSpec, remote *core.RemoteDataSource) {
	if n.install(name, pending, spec, remote) {
		if err := n.reconcile(); err != nil {
			n.log.Warn("listener not started", zap.String("filter", name), zap.Error(err))
		}
	}
}

// install does fetchAndLoad's fetch and load and reports whether it
// installed the result.
func (n *node) install(name string, pending *slotConfig, spec pluginSpec, remote *core.RemoteDataSource) bool {
	next := &slotConfig{state: dataplane.CodeFailed, failOpen: pending.failOpen}
	code, err := n.fetch(n.ctx, remote, true)
	if err == nil {
		var v vm
		if v, err = n.host.load(n.ctx, spec, code, strings.ToLower(remote.GetSha256())); err == nil {
			next = &slotConfig{vm: v, state: dataplane.CodeReady}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.slots[name]
	if s == nil || s.cur != pending {
		if next.vm != nil {
			next.vm.close()
		}
		return false
	}
	s.cur = next
	s.status.Code, s.status.CodeError = next.state, ""
	if err != nil {
		s.status.CodeError = err.Error()
		n.log.Warn("wasm code failed", zap.String("filter", name), zap.String("digest", remote.GetSha256()), zap.Error(err))
	}
	return true
}

// anyBytes is what a plugin sees of a configuration Any, as Envoy's
// MessageUtil::anyToBytes (source/common/protobuf/utility.h) gives it to
// the plugin (Plugin's constructor, source/extensions/common/wasm/plugin.h)
// and the VM (createWasm, source/extensions/common/wasm/wasm.cc): the value
// of a StringValue or BytesValue, and for any other message the Any's
// serialized value as it is.
func anyBytes(a *anypb.Any) ([]byte, error) {
	switch {
	case a == nil:
		return nil, nil
	case a.MessageIs((*wrapperspb.StringValue)(nil)):
		var v wrapperspb.StringValue
		err := a.UnmarshalTo(&v)
		return []byte(v.GetValue()), err
	case a.MessageIs((*wrapperspb.BytesValue)(nil)):
		var v wrapperspb.BytesValue
		err := a.UnmarshalTo(&v)
		return v.GetValue(), err
	}
	return a.GetValue(), nil
}
