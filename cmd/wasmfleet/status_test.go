package main

import (
	"strings"
	"testing"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestPrintStatus(t *testing.T) {
	v1, v2 := types.DigestOf([]byte("v1")), types.DigestOf([]byte("v2"))
	next := time.Date(2026, 12, 5, 11, 30, 0, 0, time.UTC)
	st := api.Status{
		RefusedReload: &api.RefusedReload{Path: "wasmfleet.yaml", Reason: "wasmfleet.yaml:3: intervall: unknown field\nwasmfleet.yaml:5: percent: 120 is over 100"},
		Filters: []api.Filter{{Name: "auth", Position: 0, Stable: v1, Candidate: v2, Percent: 10, By: "node", Steps: []int{10, 50, 100}, Step: 1,
			NextStepAt: next}},
		Nodes: []api.Node{
			{ID: "edge-1", Cluster: "edge", UserAgent: "envoy",
				Types:   []api.TypeExchange{{TypeURL: resource.ExtensionConfigType, LastAnswer: &api.Answer{Latency: api.Duration(1234567 * time.Microsecond)}}},
				Filters: []api.NodeFilter{{Filter: "auth", Acked: api.Running{Stable: v1}}}},
			{ID: "edge-2",
				Types:   []api.TypeExchange{{TypeURL: resource.ExtensionConfigType, LastAnswer: &api.Answer{NACK: true, Latency: api.Duration(40 * time.Millisecond)}}},
				Filters: []api.NodeFilter{{Filter: "auth", Acked: api.Running{Stable: v1}, Nacked: []types.Digest{v2}, Reason: "proxy_on_configure failed"}}},
			{ID: "edge-3"},
			{ID: "edge-4", Filters: []api.NodeFilter{{Filter: "auth", Acked: api.Running{Candidate: v2}}}},
		},
	}
	var b strings.Builder
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"10% by node, step 1/3  " + next.Local().Format(time.DateTime),
		"edge-1  edge     envoy  ack in 1.235s",
		"edge-2  -        -      nack in 40ms",
		v2.Short() + ": proxy_on_configure failed",
		"edge-3  -        -      -",
		"candidate " + v2.Short(),
		"CONFIG wasmfleet.yaml: the change at",
		"\n  wasmfleet.yaml:3: intervall: unknown field\n  wasmfleet.yaml:5: percent: 120 is over 100\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}
