package rollout

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Change is one node's versions of one filter before and after. A zero
// FilterVersions (empty Stable) means the filter is absent on the node.
type Change struct {
	Node   string
	Filter string
	From   types.FilterVersions
	To     types.FilterVersions
}

// String renders the change for people, e.g.
// "envoy-1 auth: 0123456789ab -> 0123456789ab + fedcba987654 (10.00%)".
func (c Change) String() string {
	return fmt.Sprintf("%s %s: %s -> %s", c.Node, c.Filter, versionsString(c.From), versionsString(c.To))
}

func versionsString(v types.FilterVersions) string {
	switch {
	case v.Stable == "":
		return "(absent)"
	case v.Candidate == "":
		return v.Stable.Short()
	}
	return fmt.Sprintf("%s + %s (%d.%02d%%)", v.Stable.Short(), v.Candidate.Short(), v.CandidateShare/100, v.CandidateShare%100)
}

// Diff lists every (node, filter) whose versions differ between two plans,
// sorted by node and then filter. A node or filter missing from one side
// counts as absent there. It is what `wasmfleet rollout plan` shows before an
// operator changes a rollout.
func Diff(before, after map[string]types.Assignment) []Change {
	var out []Change
	for node, from := range before {
		to := after[node]
		for filter, v := range from {
			if w := to[filter]; v != w {
				out = append(out, Change{Node: node, Filter: filter, From: v, To: w})
			}
		}
	}
	for node, to := range after {
		from := before[node]
		for filter, w := range to {
			if _, ok := from[filter]; !ok {
				out = append(out, Change{Node: node, Filter: filter, To: w})
			}
		}
	}
	slices.SortFunc(out, func(x, y Change) int {
		return cmp.Or(cmp.Compare(x.Node, y.Node), cmp.Compare(x.Filter, y.Filter))
	})
	return out
}
