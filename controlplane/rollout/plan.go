package rollout

import (
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// FilterInput is one filter as the planner sees it.
type FilterInput struct {
	// Spec is the filter's configuration with defaults applied
	// (config.Filter.WithDefaults).
	Spec config.Filter
	// State is the filter's stored rollout state.
	State types.FilterState
	// Failed are the nodes that failed to load State.Candidate (NACKed it)
	// while it stays the candidate, within Spec.Rollout.MaxFailedNodes.
	Failed map[string]bool
}

// CurrentPercent is the share of the fleet (or of requests) the filter's
// candidate gets now: the value of the current step when steps are set,
// otherwise Spec.Rollout.Percent. A step index beyond the configured steps
// (the steps were shortened during a rollout) counts as the last step.
func CurrentPercent(spec config.Filter, st types.FilterState) int {
	p := config.DefaultPercent
	switch steps := spec.Rollout.Steps; {
	case len(steps) > 0:
		p = steps[min(max(st.Step, 0), len(steps)-1)]
	case spec.Rollout.Percent != nil:
		p = *spec.Rollout.Percent
	}
	return min(max(p, 0), 100)
}

// Plan returns the assignment of every node in nodes; a node that runs no
// filter gets an empty, non-nil Assignment. It is pure: the same inputs give
// the same answer on any replica.
//
// Per filter:
//   - No stable version and no candidate: absent.
//   - Retired (its module was removed): absent, unless Spec.Required, in which
//     case every node keeps the stable version and any candidate is dropped;
//     removing a required filter such as auth must never open the fleet.
//   - by node: a node runs the candidate when Bucket(node, filter) is below
//     the current percent x 100, otherwise the stable version. Raising the
//     percent only moves nodes from stable to candidate; lowering it only
//     moves them back.
//   - by request: every node carries both versions, with CandidateShare set
//     to the percent in basis points. At 0% there is no candidate.
//   - At 100%, by node or by request, every node runs the candidate as its
//     only version. The state still holds the stable version, so a NACK of
//     the candidate moves every node back to it (see Confirmed).
//   - A first version (a candidate with no stable yet) goes to the nodes
//     inside the percent only; the filter is absent on the others. A brand-new
//     filter at 10% is expected to reach 10% of the fleet, not all of it.
//     With by request this is planned by node too, since there is no stable
//     version to split requests with.
//   - A node in Failed runs the stable version only, whatever the percent,
//     while the candidate lasts (with no stable version it gets the
//     candidate as the others do; after a promotion there is no candidate).
//     Sending it the candidate again would not be loaded: Envoy skips a
//     config equal to the last one it received, even one it rejected, and
//     ACKs it, so the node would look as if it ran the candidate.
//
// Filter names are expected to be unique in filters; with duplicates the last
// one wins.
func Plan(filters []FilterInput, nodes []string) map[string]types.Assignment {
	out := make(map[string]types.Assignment, len(nodes))
	for _, n := range nodes {
		out[n] = make(types.Assignment, len(filters))
	}
	last := make(map[string]int, len(filters))
	for i, f := range filters {
		last[f.Spec.Name] = i
	}
	for i, f := range filters {
		if last[f.Spec.Name] == i {
			planFilter(f, out)
		}
	}
	return out
}

// planFilter writes one filter's versions into every node's assignment.
func planFilter(f FilterInput, out map[string]types.Assignment) {
	name, st := f.Spec.Name, f.State
	if st.Retired && !f.Spec.Required {
		return
	}
	stable, cand := st.Stable, st.Candidate
	if st.Retired || cand == stable {
		cand = ""
	}
	share := 0
	if cand != "" {
		share = CurrentPercent(f.Spec, st) * 100
	}

	switch {
	case share <= 0:
		if stable == "" {
			return
		}
		for _, a := range out {
			a[name] = types.FilterVersions{Stable: stable}
		}
	case share >= Buckets:
		for _, a := range out {
			a[name] = types.FilterVersions{Stable: cand}
		}
	case f.Spec.Rollout.By == config.ByRequest && stable != "":
		for _, a := range out {
			a[name] = types.FilterVersions{Stable: stable, Candidate: cand, CandidateShare: types.BasisPoints(share)}
		}
	default:
		for n, a := range out {
			switch {
			case Bucket(n, name) < share:
				a[name] = types.FilterVersions{Stable: cand}
			case stable != "":
				a[name] = types.FilterVersions{Stable: stable}
			}
		}
	}
	if cand == "" || stable == "" {
		return // nothing to keep a failed node on
	}
	for n := range f.Failed {
		if a, ok := out[n]; ok {
			a[name] = types.FilterVersions{Stable: stable}
		}
	}
}
