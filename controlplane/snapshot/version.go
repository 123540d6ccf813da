package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Managed-mode RDS and ECDS versions carry, after the content hash, what
// they enable and load, so that the version a node reports back (on every
// ACK, and on the first request of a new stream) tells the sequencing stage
// what the node runs, also after a control-plane restart or on another
// replica:
//
//	RDS:  <hash>~<pair>:<filter>[:<share>],...       the chain the routes run
//	ECDS: <hash>~<pairs>~<slot>=<filter>@<key>,...   the non-empty slots
//
// Filter names are lower-case letters, digits, '-' and '_' (config
// validation), so the separators cannot occur inside them.
const versionSep = "~"

// maxPairs bounds the slot pairs a parsed version may claim: well above any
// listener's (filter_slots is at most 64), well below a costly allocation.
const maxPairs = 1024

// ConfigKey identifies the ECDS config of filter f running module d: equal
// keys mean the same Wasm config, whatever the slot. It covers every field
// wasmConfig puts in the resource.
func ConfigKey(in Input, f config.Filter, d wtypes.Digest) string {
	parts := []string{string(d), string(f.Config), f.RootID, string(f.FailurePolicy), string(f.Code),
		strconv.FormatBool(f.AllowOnHeadersStopIteration)}
	// Added only when set, so that keys of configs without them stay as
	// they were; names with '=' cannot be environment variable names.
	if f.ConfigBase64 != "" {
		parts = append(parts, "=config_base64", f.ConfigBase64)
	}
	if len(f.VM.Configuration) > 0 {
		parts = append(parts, "=vm.configuration", string(f.VM.Configuration))
	}
	for _, k := range slices.Sorted(maps.Keys(f.VM.Env)) {
		parts = append(parts, k, f.VM.Env[k])
	}
	h := sha256.New()
	for _, s := range parts {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	if f.Code != config.CodeInline {
		h.Write([]byte(in.ModuleURL))
	}
	return f.Name + "@" + hex.EncodeToString(h.Sum(nil))[:8]
}

func routesVersion(hash string, chain []wtypes.Link) string {
	parts := make([]string, len(chain))
	for i, l := range chain {
		parts[i] = strconv.Itoa(l.Pair) + ":" + l.Filter
		if l.Split() {
			parts[i] += ":" + strconv.Itoa(int(l.Share))
		}
	}
	return hash + versionSep + strings.Join(parts, ",")
}

// slotKeys is the config key of every slot ("" for the no-op).
func slotKeys(in Input, slots []wtypes.SlotFill) []string {
	keys := make([]string, len(slots))
	for i, fill := range slots {
		if fill.Filter == "" {
			continue
		}
		f, _ := in.filter(fill.Filter) // build checked it exists
		keys[i] = ConfigKey(in, f, fill.Digest)
	}
	return keys
}

func slotsVersion(hash string, keys []string) string {
	var parts []string
	for i, key := range keys {
		if key != "" {
			parts = append(parts, strconv.Itoa(i)+"="+key)
		}
	}
	return hash + versionSep + strconv.Itoa(len(keys)/2) + versionSep + strings.Join(parts, ",")
}

// resourceVersion is the delta xDS version of the i-th resource of type typ
// in a managed-mode snapshot, hash being the hash of its encoding. Envoy
// reports these back per resource (initial_resource_versions on a new delta
// stream, DeltaSubscriptionState::getNextRequestAckless in
// source/extensions/config_subscription/grpc/delta_subscription_state.cc)
// instead of a version per type, so each carries its share of what
// the type's version says:
//
//	RDS:  <hash>~<pair>:<filter>[:<share>],...   as the type's version
//	ECDS: <hash>~<filter>@<key>                  the slot's config key, or
//	      <hash>~                                for the no-op
//
// It also makes a delta response follow every change the sequencing stage
// waits for: routes that enable the same slots for another filter encode to
// the same bytes, and go-control-plane sends a resource only when its
// version changed.
//
// keys holds the layout's slot keys by slot index; i is the resource's
// index among the type's items, which for ECDS are built one per slot, in
// slot order (managed).
func resourceVersion(typ, hash string, chain []wtypes.Link, keys []string, i int) string {
	switch typ {
	case resource.RouteType:
		return routesVersion(hash, chain)
	case resource.ExtensionConfigType:
		return hash + versionSep + keys[i]
	}
	return hash
}

// ParseRoutes returns the chain a managed-mode RDS version enables; ok is
// false for a version this builder did not make.
func ParseRoutes(v string) (chain []wtypes.Link, ok bool) {
	_, body, found := strings.Cut(v, versionSep)
	if !found {
		return nil, false
	}
	if body == "" {
		return nil, true
	}
	for _, part := range strings.Split(body, ",") {
		f := strings.Split(part, ":")
		if len(f) < 2 || len(f) > 3 || f[1] == "" {
			return nil, false
		}
		p, err := strconv.Atoi(f[0])
		if err != nil || p < 0 {
			return nil, false
		}
		l := wtypes.Link{Pair: p, Filter: f[1]}
		if len(f) == 3 {
			share, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, false
			}
			l.Share = wtypes.BasisPoints(share)
		}
		chain = append(chain, l)
	}
	return chain, true
}

// ParseSlots returns the config key of every slot of a managed-mode ECDS
// version ("" for the no-op), two per pair; ok is false for a version this
// builder did not make.
func ParseSlots(v string) (keys []string, ok bool) {
	parts := strings.Split(v, versionSep)
	if len(parts) != 3 {
		return nil, false
	}
	pairs, err := strconv.Atoi(parts[1])
	if err != nil || pairs < 0 || pairs > maxPairs {
		return nil, false
	}
	keys = make([]string, 2*pairs)
	if parts[2] == "" {
		return keys, true
	}
	for _, e := range strings.Split(parts[2], ",") {
		slot, key, found := strings.Cut(e, "=")
		i, err := strconv.Atoi(slot)
		if !found || err != nil || i < 0 || i >= len(keys) || !strings.Contains(key, "@") {
			return nil, false
		}
		keys[i] = key
	}
	return keys, true
}

// ParseRouteVersions returns the chain that a managed node's route
// configurations enable, from their delta versions by name (what a delta
// stream reports); ok is false unless every version is one this builder
// made and all enable the same chain (the builder gives every listener's
// routes the same one).
func ParseRouteVersions(versions map[string]string) (chain []wtypes.Link, ok bool) {
	first := true
	for _, v := range versions {
		c, ok := ParseRoutes(v)
		if !ok || !first && !slices.Equal(c, chain) {
			return nil, false
		}
		chain, first = c, false
	}
	return chain, !first
}

// ParseSlotVersions returns the config key of every slot, as ParseSlots
// does, from the slots' delta versions by resource name; ok is false for a
// name or version this builder did not make. The slot pairs are those up
// to the highest one named: a managed node subscribes to every slot of its
// listeners.
func ParseSlotVersions(versions map[string]string) (keys []string, ok bool) {
	byIndex := make(map[int]string, len(versions))
	pairs := 0
	for name, v := range versions {
		i, ok := slotIndex(name)
		_, key, found := strings.Cut(v, versionSep)
		if !ok || !found || key != "" && !strings.Contains(key, "@") {
			return nil, false
		}
		byIndex[i] = key
		pairs = max(pairs, i/2+1)
	}
	if pairs == 0 {
		return nil, false
	}
	keys = make([]string, 2*pairs)
	for i, key := range byIndex {
		keys[i] = key
	}
	return keys, true
}

// slotIndex is the slot (2 x pair, +1 for the canary) SlotName names.
func slotIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, slotPrefix)
	if !ok {
		return 0, false
	}
	rest, canary := strings.CutSuffix(rest, canarySuffix)
	p, err := strconv.Atoi(rest)
	if err != nil || p < 0 || p >= maxPairs || strconv.Itoa(p) != rest {
		return 0, false
	}
	if canary {
		return 2*p + 1, true
	}
	return 2 * p, true
}
