package rollout

import (
	"fmt"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// Digests used across the tests: v1 is typically stable, v2 the candidate.
var (
	v1 = types.DigestOf([]byte("version 1"))
	v2 = types.DigestOf([]byte("version 2"))
	v3 = types.DigestOf([]byte("version 3"))
)

// t0 is the tests' "now"; nothing here reads a clock.
var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// spec returns a filter spec with defaults applied after edit changed it.
func spec(name string, edit func(*config.Rollout)) config.Filter {
	f := config.Filter{Name: name}
	if edit != nil {
		edit(&f.Rollout)
	}
	return f.WithDefaults()
}

// percent sets a fixed rollout percent.
func percent(p int) func(*config.Rollout) {
	return func(r *config.Rollout) { r.Percent = &p }
}

// byRequest sets a fixed percent of requests.
func byRequest(p int) func(*config.Rollout) {
	return func(r *config.Rollout) { r.Percent = &p; r.By = config.ByRequest }
}

// steps sets rollout steps held for interval each.
func steps(interval time.Duration, s ...int) func(*config.Rollout) {
	return func(r *config.Rollout) { r.Steps = s; r.Interval = config.Duration(interval) }
}

// nodeIDs returns n synthetic node ids.
func nodeIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("envoy-%d.fleet.local", i)
	}
	return ids
}
