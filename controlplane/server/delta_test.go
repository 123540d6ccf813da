package server

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/snapshot"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestDeltaSendsOnlyTheChange: over a real delta ADS stream, changing one
// inline filter of three sends that filter's slot alone: the response is
// at most 5% larger than the module it carries, and carries no other
// module.
func TestDeltaSendsOnlyTheChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := start(t, ctx)
	modules := map[types.Digest][]byte{}
	module := func(name string) types.Digest { // 256 KiB, distinct per name
		b := bytes.Repeat([]byte(name), 256<<10/len(name))
		d := types.DigestOf(b)
		modules[d] = b
		return d
	}
	h.input.Filters = nil
	for _, name := range []string{"auth", "logging", "transform"} {
		h.input.Filters = append(h.input.Filters, config.Filter{Name: name, Code: config.CodeInline}.WithDefaults())
	}
	h.input.Inline = func(d types.Digest) ([]byte, error) { return modules[d], nil }
	a := types.Assignment{"auth": {Stable: module("auth")}, "logging": {Stable: module("logging")}, "transform": {Stable: module("transform-1")}}
	h.assign(t, a)

	s, err := discovery.NewAggregatedDiscoveryServiceClient(h.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: ecds, ResourceNamesSubscribe: allSlots()}); err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first.GetResources()); n != len(allSlots()) {
		t.Fatalf("first response: %d resources, want every slot (%d)", n, len(allSlots()))
	}
	if err := s.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: ecds, ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}

	changed := module("transform-2")
	a["transform"] = types.FilterVersions{Stable: changed}
	h.assign(t, a)
	resp, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	slot := snapshot.SlotName(2, false)
	if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetName() != slot {
		t.Fatalf("after changing transform: resources %v, want only %s", names(resp), slot)
	}
	size, limit := proto.Size(resp), len(modules[changed])*105/100
	t.Logf("one changed %d-byte module of three: a %d-byte delta response (first response: %d bytes)", len(modules[changed]), size, proto.Size(first))
	if size > limit {
		t.Errorf("response is %d bytes for a %d-byte module, want at most %d", size, len(modules[changed]), limit)
	}
	cancel()
	if err := <-h.stopped; err != nil {
		t.Errorf("Start returned %v after its context ended", err)
	}
}

func names(r *discovery.DeltaDiscoveryResponse) []string {
	var out []string
	for _, res := range r.GetResources() {
		out = append(out, fmt.Sprintf("%s@%s", res.GetName(), res.GetVersion()))
	}
	return out
}
