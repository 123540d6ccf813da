package xdscheck

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// applyExtensions applies ECDS resources in order and stops at the first
// one that fails, as Envoy's mux loop does.
func (m *model) applyExtensions(resources []*anypb.Any, fails Fails) (string, error) {
	for i, a := range resources {
		p, err := m.parse(a)
		if err != nil {
			return "", fmt.Errorf("resource %d: %w", i, err)
		}
		name := p.tec.GetName()
		x := m.ext(name)
		x.ready = true
		if x.received != nil && sameAny(x.received, p.tec.GetTypedConfig()) {
			continue // identical to the last received: ACKed, not built
		}
		inner, err := p.check()
		if err != nil {
			return name, fmt.Errorf("%s: %w", name, err) // rejected, not recorded
		}
		x.received, x.rejected = p.tec.GetTypedConfig(), nil
		if w, ok := inner.(*wasmfilter.Wasm); ok && fails != nil {
			if err := fails(name, w); err != nil {
				held := p.held
				x.rejected = &held
				m.nacked[held.Plugin] = append(m.nacked[held.Plugin], p.tec.GetTypedConfig())
				return name, fmt.Errorf("%s: %w", name, err)
			}
		}
		x.cur, x.held = p.tec.GetTypedConfig(), p.held
	}
	return "", nil
}

// parsedExt is an ECDS resource as the model needs it. Parsing is cached
// per resource (the Recorder interns identical resources), and the
// typed_config's bytes alias the resource's, because a slot's config holds a
// 2 MB module that every response re-sends and copying it is what costs
// most under the race detector.
type parsedExt struct {
	tec *core.TypedExtensionConfig
	// Set by check: whether it ran, what the config is, why it is invalid.
	checked bool
	held    Held
	invalid error
}

func (m *model) parse(a *anypb.Any) (*parsedExt, error) {
	if p, ok := m.parsed[a]; ok {
		return p, nil
	}
	if a.GetTypeUrl() != ExtensionType {
		return nil, fmt.Errorf("type %s in a %s response", a.GetTypeUrl(), ExtensionType)
	}
	tec, err := splitExtension(a.GetValue())
	if err != nil {
		return nil, err
	}
	p := &parsedExt{tec: tec}
	m.parsed[a] = p
	return p, nil
}

// check validates the config as Envoy does before building it and returns
// the decoded typed_config (a fresh copy; only its summary is kept).
func (p *parsedExt) check() (proto.Message, error) {
	if p.checked && p.invalid != nil {
		return nil, p.invalid
	}
	inner, err := unpackConfig(p.tec)
	p.checked, p.invalid = true, err
	if err == nil {
		p.held = describe(p.tec.GetTypedConfig(), inner)
	}
	return inner, err
}

// splitExtension decodes a TypedExtensionConfig whose typed_config value
// aliases b. Anything unusual (a field repeated, a wire type it does not
// expect) falls back to proto.Unmarshal.
func splitExtension(b []byte) (*core.TypedExtensionConfig, error) {
	full := func() (*core.TypedExtensionConfig, error) {
		tec := &core.TypedExtensionConfig{}
		return tec, proto.Unmarshal(b, tec)
	}
	tec := &core.TypedExtensionConfig{}
	seen := map[protowire.Number]bool{}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || seen[num] {
			return full()
		}
		seen[num] = true
		rest = rest[n:]
		if (num != 1 && num != 2) || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, rest); n < 0 {
				return full()
			}
			rest = rest[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(rest)
		if n < 0 {
			return full()
		}
		rest = rest[n:]
		if num == 1 {
			tec.Name = string(v)
			continue
		}
		a, ok := splitAny(v)
		if !ok {
			return full()
		}
		tec.TypedConfig = a
	}
	return tec, nil
}

// splitAny decodes an Any whose value aliases b.
func splitAny(b []byte) (*anypb.Any, bool) {
	a := &anypb.Any{}
	seen := map[protowire.Number]bool{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || seen[num] || typ != protowire.BytesType || (num != 1 && num != 2) {
			return nil, false
		}
		seen[num] = true
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return nil, false
		}
		b = b[n+m:]
		if num == 1 {
			a.TypeUrl = string(v)
		} else {
			a.Value = v[:len(v):len(v)]
		}
	}
	return a, true
}

// unpackConfig decodes and validates an ECDS resource's typed_config.
func unpackConfig(tec *core.TypedExtensionConfig) (proto.Message, error) {
	if err := validate(tec); err != nil {
		return nil, err
	}
	inner, err := tec.GetTypedConfig().UnmarshalNew()
	if err != nil {
		return nil, err
	}
	if err := validate(inner); err != nil {
		return nil, err
	}
	return inner, nil
}

// sameAny reports whether two typed_configs are the same config: the same
// type and bytes. Envoy compares hashes of the messages; go-control-plane
// marshals resources deterministically, so one config is always the same
// bytes.
func sameAny(a, b *anypb.Any) bool {
	return a == b || (a.GetTypeUrl() == b.GetTypeUrl() && bytes.Equal(a.GetValue(), b.GetValue()))
}

// describe summarises a decoded typed_config.
func describe(a *anypb.Any, inner proto.Message) Held {
	w, ok := inner.(*wasmfilter.Wasm)
	if !ok {
		return Held{Kind: HeldNoop, Type: a.GetTypeUrl()}
	}
	return Held{Kind: HeldWasm, Type: a.GetTypeUrl(), Plugin: w.GetConfig().GetName(), Code: CodeDigest(w)}
}

// CodeDigest is the sha256 (hex) of a Wasm filter's module: of its inline
// bytes or string, or the sha256 its remote source names. Empty if neither.
func CodeDigest(w *wasmfilter.Wasm) string {
	code := w.GetConfig().GetVmConfig().GetCode()
	if l := code.GetLocal(); l != nil {
		b := l.GetInlineBytes()
		if b == nil && l.GetInlineString() != "" {
			b = []byte(l.GetInlineString())
		}
		if b != nil {
			sum := sha256.Sum256(b)
			return hex.EncodeToString(sum[:])
		}
	}
	return strings.ToLower(code.GetRemote().GetSha256())
}

// slotState returns what an ECDS name holds.
func (m *model) slotState(name string) SlotState {
	x, ok := m.exts[name]
	if !ok {
		return SlotState{Running: Held{Kind: HeldNothing}}
	}
	st := SlotState{Running: x.held, Rejected: x.rejected}
	if x.cur == nil {
		st.Running = Held{Kind: HeldNothing}
	}
	return st
}

// wasNacked reports whether the node failed to load config a for plugin.
func (m *model) wasNacked(plugin string, a *anypb.Any) bool {
	return slices.ContainsFunc(m.nacked[plugin], func(b *anypb.Any) bool { return sameAny(a, b) })
}
