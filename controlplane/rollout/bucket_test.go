package rollout

import (
	"fmt"
	"strings"
	"testing"
)

// TestBucketGolden pins the hash. If this fails, Bucket changed, and every
// node of a live fleet would land in another bucket: nodes would switch
// versions in the middle of a rollout. The values were checked independently
// with sha256sum and Python.
func TestBucketGolden(t *testing.T) {
	tests := []struct {
		name   string
		node   string
		filter string
		want   int
	}{
		{name: "plain id", node: "envoy-0", filter: "auth", want: 4846},
		{name: "neighbouring id", node: "envoy-1", filter: "auth", want: 1232},
		{name: "same node other filter", node: "envoy-1", filter: "logging", want: 1235},
		{name: "dotted id", node: "node-a.eu-west-1", filter: "transform", want: 8010},
		{name: "empty strings", node: "", filter: "", want: 3192},
		{name: "address-like id", node: "10.0.0.7:envoy", filter: "auth", want: 5972},
		{name: "id longer than the stack buffer", node: strings.Repeat("x", 300), filter: "auth", want: 4006},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Bucket(tt.node, tt.filter); got != tt.want {
				t.Fatalf("Bucket(%q, %q) = %d, want %d: the hash changed, which reshuffles a live fleet", tt.node, tt.filter, got, tt.want)
			}
		})
	}
}

// TestBucketDistribution checks that synthetic node ids, as similar to each
// other as real ones, spread evenly: a chi-square statistic over 100 equal
// ranges of buckets stays well inside what a uniform spread gives.
func TestBucketDistribution(t *testing.T) {
	const (
		nodes = 10000
		bins  = 100
	)
	for _, filter := range []string{"auth", "logging", "transform"} {
		t.Run(filter, func(t *testing.T) {
			var counts [bins]int
			for i := range nodes {
				b := Bucket(fmt.Sprintf("envoy-%d", i), filter)
				if b < 0 || b >= Buckets {
					t.Fatalf("Bucket = %d, outside 0..%d", b, Buckets-1)
				}
				counts[b*bins/Buckets]++
			}
			expected := float64(nodes) / bins
			chi2 := 0.0
			for _, c := range counts {
				d := float64(c) - expected
				chi2 += d * d / expected
			}
			// 99 degrees of freedom: mean 99, standard deviation ~14.
			// 160 is above the 99.99th percentile.
			if chi2 > 160 {
				t.Fatalf("chi-square over %d bins = %.1f, want <= 160; counts %v", bins, chi2, counts)
			}
		})
	}
}

// TestBucketFiltersIndependent checks that each filter picks its own slice of
// the fleet: the nodes in the first 10% for auth are not also the first 10%
// for logging, so one node is not the canary for every filter.
func TestBucketFiltersIndependent(t *testing.T) {
	const nodes = 10000
	both, auth := 0, 0
	for i := range nodes {
		n := fmt.Sprintf("envoy-%d", i)
		if Bucket(n, "auth") < 1000 {
			auth++
			if Bucket(n, "logging") < 1000 {
				both++
			}
		}
	}
	// Independent: about 10% of auth's canaries are also logging's (~100
	// nodes, standard deviation ~9.5).
	if both < 60 || both > 140 {
		t.Fatalf("%d of %d auth canaries are also logging canaries, want about 100", both, auth)
	}
}
