package sequence

import (
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Want is one filter of the chain a node should run, in chain order.
type Want struct {
	Filter string
	// Stable is the version every request runs, or, when Share splits the
	// requests, the version the rest of them run.
	Stable types.Digest
	// Candidate runs Share of the requests; empty when nothing is split.
	Candidate types.Digest
	Share     types.BasisPoints
	// StableKey and CandidateKey identify the exact ECDS config of each
	// version (module and plugin settings), as the builder's ConfigKey
	// computes them; a slot counts as loaded only with the same key.
	StableKey, CandidateKey string
}

// KeyFunc returns the config key of filter f running module d.
type KeyFunc func(f config.Filter, d types.Digest) string

// Wants lists the filters of a node's assignment in chain order (the order
// of filters), with the versions each effectively runs. Filters without a
// stable version are left out. key may be nil when keys are not needed (a
// canonical layout).
func Wants(filters []config.Filter, a types.Assignment, key KeyFunc) []Want {
	var out []Want
	for _, f := range filters {
		v, ok := a[f.Name]
		if !ok || v.Stable == "" {
			continue
		}
		v = v.Effective()
		w := Want{Filter: f.Name, Stable: v.Stable, Candidate: v.Candidate, Share: v.CandidateShare}
		if key != nil {
			w.StableKey = key(f, w.Stable)
			if w.Candidate != "" {
				w.CandidateKey = key(f, w.Candidate)
			}
		}
		out = append(out, w)
	}
	return out
}

// Canonical lays wants out from pair 0 up, in a listener of pairs slot pairs
// (more when the chain is longer): what a node that runs nothing yet gets,
// and what ECDS-only mode and tests use.
func Canonical(pairs int, wants []Want) types.Layout {
	pos := make([]int, len(wants))
	for i := range pos {
		pos[i] = i
	}
	return layoutOf(max(pairs, len(wants)), wants, pos, nil)
}

// layoutOf fills the pairs pos[i] with wants[i]; every other slot, the
// canary twin of an unsplit pair among them, keeps what keep says (nil: the
// no-op). An idle canary holds the no-op, not a copy of the stable config,
// which would send every inline module twice and have Envoy load it twice;
// but while a route may still split requests to it, keep holds it to the
// filter that route expects (a promotion goes out as new routes and a new
// canary config at once, and either may arrive first).
func layoutOf(pairs int, wants []Want, pos []int, keep func(slot int) types.SlotFill) types.Layout {
	l := types.Layout{Slots: make([]types.SlotFill, 2*pairs)}
	if keep == nil {
		keep = func(int) types.SlotFill { return types.SlotFill{} }
	}
	used := make([]bool, pairs)
	for i, w := range wants {
		p := pos[i]
		used[p] = true
		l.Slots[2*p] = types.SlotFill{Filter: w.Filter, Digest: w.Stable}
		link := types.Link{Pair: p, Filter: w.Filter}
		if w.split() {
			l.Slots[2*p+1] = types.SlotFill{Filter: w.Filter, Digest: w.Candidate}
			link.Share = w.Share
		} else {
			l.Slots[2*p+1] = keep(2*p + 1)
		}
		l.Chain = append(l.Chain, link)
	}
	for p := range pairs {
		if !used[p] {
			l.Slots[2*p], l.Slots[2*p+1] = keep(2*p), keep(2*p+1)
		}
	}
	return l
}

func (w Want) split() bool {
	return types.FilterVersions{Stable: w.Stable, Candidate: w.Candidate, CandidateShare: w.Share}.Split()
}

// keys returns the config keys w puts in its pair's stable and canary slots
// ("" for the no-op).
func (w Want) keys() (stable, canary string) {
	if w.split() {
		return w.StableKey, w.CandidateKey
	}
	return w.StableKey, ""
}
