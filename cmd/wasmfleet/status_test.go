package main

import (
	"strings"
	"testing"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestPrintStatus(t *testing.T) {
	v1, v2 := types.DigestOf([]byte("v1")), types.DigestOf([]byte("v2"))
	st := admin.Status{
		Filters: []controller.FilterStatus{{Name: "auth", Position: 0, Stable: v1, Candidate: v2, Percent: 10, By: "node"}},
		Nodes: []fleet.NodeStatus{
			{ID: "edge-1", Cluster: "edge", UserAgent: "envoy",
				Types:   []fleet.TypeStatus{{TypeURL: resource.ExtensionConfigType, LastAnswer: &fleet.Answer{Latency: 1234567 * time.Microsecond}}},
				Filters: []fleet.FilterStatus{{Filter: "auth", Acked: types.FilterVersions{Stable: v1}}}},
			{ID: "edge-2",
				Types:   []fleet.TypeStatus{{TypeURL: resource.ExtensionConfigType, LastAnswer: &fleet.Answer{NACK: true, Latency: 40 * time.Millisecond}}},
				Filters: []fleet.FilterStatus{{Filter: "auth", Acked: types.FilterVersions{Stable: v1}, Nacked: []types.Digest{v2}, Reason: "proxy_on_configure failed"}}},
			{ID: "edge-3"},
		},
	}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		"10% by node",
		"edge-1  edge     envoy  ack in 1.235s",
		"edge-2  -        -      nack in 40ms",
		v2.Short() + ": proxy_on_configure failed",
		"edge-3  -        -      -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}
