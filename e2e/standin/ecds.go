package standin

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	wasmfilterpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	wftypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
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
)

// slot is one ECDS resource: the config it runs and its status.
type slot struct {
	res    *core.TypedExtensionConfig // last accepted
	cur    *slotConfig
	status dataplane.ExtensionStatus
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
// skipped: the no-op placeholder, FAIL_OPEN without a VM, or code still
// being fetched (Envoy's createFilter returns no filter while the plugin has
// no handle yet; see SIMPLIFICATIONS.md).
func (sc *slotConfig) newStream() (filterStream, error) {
	switch {
	case sc.vm != nil:
		return sc.vm.newStream()
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

// applyExtensions applies each ECDS resource on its own: an update that
// fails leaves that slot's previous config in place, the others take effect,
// and the response is NACKed with every failure's reason.
func (n *node) applyExtensions(version string, msgs []proto.Message) error {
	var errs []error
	for _, m := range msgs {
		tec := m.(*core.TypedExtensionConfig)
		if err := n.applyExtension(version, tec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", tec.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

func (n *node) applyExtension(version string, tec *core.TypedExtensionConfig) error {
	name := tec.GetName()
	n.mu.RLock()
	s := n.slots[name]
	unchanged := s != nil && proto.Equal(s.res, tec)
	n.mu.RUnlock()
	if unchanged {
		// Same content: Envoy keeps the running filter (no reload).
		n.mu.Lock()
		s.status.Version, s.status.Error = version, ""
		n.mu.Unlock()
		return nil
	}
	sc, st, background, err := n.prepare(name, tec)
	n.mu.Lock()
	defer n.mu.Unlock()
	s = n.slots[name]
	if s == nil {
		s = &slot{}
		n.slots[name] = s
	}
	if err != nil {
		s.status.Error = err.Error()
		return err
	}
	old := s.cur
	st.Version = version
	s.res, s.cur, s.status = tec, sc, st
	if old != nil {
		n.retire(old)
	}
	if background != nil {
		n.goBackground(background)
	}
	return nil
}

// prepare turns a resource into a config to install. Inline and cached code
// is loaded now (a failure NACKs); uncached remote code yields a pending
// config and the background work that fetches and loads it.
func (n *node) prepare(name string, tec *core.TypedExtensionConfig) (*slotConfig, dataplane.ExtensionStatus, func(), error) {
	st := dataplane.ExtensionStatus{Type: tec.GetTypedConfig().GetTypeUrl()}
	inner, err := tec.GetTypedConfig().UnmarshalNew()
	if err == nil {
		err = validate(inner)
	}
	if err != nil {
		return nil, st, nil, err
	}
	if hm, ok := anyOf(tec.GetTypedConfig(), &headermutationpb.HeaderMutation{}); ok {
		if hm.GetMutations() != nil {
			return nil, st, nil, fmt.Errorf("header_mutation with mutations: %w", errUnsupported)
		}
		return &slotConfig{}, st, nil, nil
	}
	w, ok := anyOf(tec.GetTypedConfig(), &wasmfilterpb.Wasm{})
	if !ok {
		return nil, st, nil, fmt.Errorf("typed_config %s: %w", st.Type, errUnsupported)
	}
	pc := w.GetConfig()
	vmc := pc.GetVmConfig()
	if vmc == nil {
		return nil, st, nil, fmt.Errorf("wasm: vm_config is required: %w", errUnsupported)
	}
	spec := pluginSpec{slot: name, name: pc.GetName(), rootID: pc.GetRootId(), vmID: vmc.GetVmId()}
	if spec.vmConfig, err = anyBytes(vmc.GetConfiguration()); err != nil {
		return nil, st, nil, fmt.Errorf("wasm: vm configuration: %w", err)
	}
	if spec.configuration, err = anyBytes(pc.GetConfiguration()); err != nil {
		return nil, st, nil, fmt.Errorf("wasm: plugin configuration: %w", err)
	}
	// FAIL_RELOAD falls back to FAIL_CLOSED for everything but a VM that
	// failed at run time; the stand-in never reloads (SIMPLIFICATIONS.md).
	spec.failOpen = pc.GetFailurePolicy() == wasmpb.FailurePolicy_FAIL_OPEN ||
		pc.GetFailurePolicy() == wasmpb.FailurePolicy_UNSPECIFIED && pc.GetFailOpen()

	code, digest, err := n.codeNow(vmc)
	st.Digest = digest
	switch {
	case err != nil:
		return nil, st, nil, err
	case code != nil:
		v, err := n.host.load(n.ctx, spec, code, digest)
		if err != nil {
			return nil, st, nil, err
		}
		st.Code = dataplane.CodeReady
		return &slotConfig{vm: v, state: dataplane.CodeReady}, st, nil, nil
	case vmc.GetNackOnCodeCacheMiss():
		n.startPrefetch(vmc.GetCode().GetRemote())
		return nil, st, nil, fmt.Errorf("%w: sha256 %s (fetching)", ErrCodeCacheMiss, digest)
	}
	pending := &slotConfig{state: dataplane.CodePending, failOpen: spec.failOpen}
	st.Code = dataplane.CodePending
	remote := vmc.GetCode().GetRemote()
	return pending, st, func() { n.fetchAndLoad(name, pending, spec, remote) }, nil
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
// slot has moved on to another config meanwhile.
func (n *node) fetchAndLoad(name string, pending *slotConfig, spec pluginSpec, remote *core.RemoteDataSource) {
	next := &slotConfig{state: dataplane.CodeFailed, failOpen: pending.failOpen}
	code, err := n.fetch(n.ctx, remote)
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
		return
	}
	s.cur = next
	s.status.Code, s.status.CodeError = next.state, ""
	if err != nil {
		s.status.CodeError = err.Error()
		n.log.Warn("wasm code failed", zap.String("filter", name), zap.String("digest", remote.GetSha256()), zap.Error(err))
	}
}

// anyBytes is what a plugin sees of a configuration Any: the string of a
// StringValue, the bytes of a BytesValue, JSON for anything else (as Envoy).
func anyBytes(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, err
	}
	switch v := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(v.GetValue()), nil
	case *wrapperspb.BytesValue:
		return v.GetValue(), nil
	}
	return protojson.Marshal(m)
}
