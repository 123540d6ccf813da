package snapshot

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
)

// TestResourceVersions: the delta versions of a managed snapshot's routes
// and slots, by name as a reconnecting node reports them, read back as the
// chain and slot keys its type versions carry; every other resource's
// version is the hash of its encoding.
func TestResourceVersions(t *testing.T) {
	in, a := baseInput()
	a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v1"), Candidate: digest("auth-v2"), CandidateShare: 3000}
	s, err := buildOne(NewBuilder(), in, a)
	if err != nil {
		t.Fatal(err)
	}
	chain, ok := ParseRoutes(s.GetVersion(resource.RouteType))
	if !ok || len(chain) != 3 {
		t.Fatalf("routes version %q: chain %v", s.GetVersion(resource.RouteType), chain)
	}
	got, ok := ParseRouteVersions(s.GetVersionMap(resource.RouteType))
	if !ok || !slices.Equal(got, chain) {
		t.Errorf("routes from resource versions %v: %v, %v; want %v", s.GetVersionMap(resource.RouteType), got, ok, chain)
	}
	keys, ok := ParseSlots(s.GetVersion(resource.ExtensionConfigType))
	if !ok {
		t.Fatalf("slots version %q", s.GetVersion(resource.ExtensionConfigType))
	}
	gotKeys, ok := ParseSlotVersions(s.GetVersionMap(resource.ExtensionConfigType))
	if !ok || !slices.Equal(gotKeys, keys) {
		t.Errorf("slots from resource versions: %q, %v; want %q", gotKeys, ok, keys)
	}
	for name, r := range s.GetResources(resource.ListenerType) {
		b, err := cache.MarshalResource(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.GetVersionMap(resource.ListenerType)[name], cache.HashResource(b)[:16]; got != want {
			t.Errorf("listener %s: version %q, want its hash %q", name, got, want)
		}
	}
	empty, err := buildOne(NewBuilder(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if chain, ok := ParseRouteVersions(empty.GetVersionMap(resource.RouteType)); !ok || len(chain) != 0 {
		t.Errorf("routes of an empty chain: %v, %v", chain, ok)
	}
}

// TestParseResourceVersionsRefuses: versions this builder did not make,
// routes that disagree and names that are not slots read as unknown.
func TestParseResourceVersionsRefuses(t *testing.T) {
	tests := []struct {
		name   string
		routes map[string]string
		slots  map[string]string
	}{
		{name: "go-control-plane hashes",
			routes: map[string]string{"wasmfleet.routes.ingress": "46f07e17255778518b6541564ab4bf52"},
			slots:  map[string]string{"wasmfleet.slot.0": "e6a53db3c9d2fcaff2c4c70d27892"}},
		{name: "nothing reported", routes: map[string]string{}, slots: map[string]string{}},
		{name: "disagreeing routes and foreign slot names",
			routes: map[string]string{"wasmfleet.routes.a": "h~0:auth", "wasmfleet.routes.b": "h~1:auth"},
			slots:  map[string]string{"wasmfleet.slot.x": "h~auth@1"}},
		{name: "a slot key without a filter",
			routes: map[string]string{"wasmfleet.routes.a": "h~0"},
			slots:  map[string]string{"wasmfleet.slot.0": "h~12345678"}},
		{name: "a slot far out",
			routes: map[string]string{"wasmfleet.routes.a": "h~0"},
			slots:  map[string]string{"wasmfleet.slot.4096": "h~"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if chain, ok := ParseRouteVersions(tt.routes); ok {
				t.Errorf("routes %v read as %v", tt.routes, chain)
			}
			if keys, ok := ParseSlotVersions(tt.slots); ok {
				t.Errorf("slots %v read as %q", tt.slots, keys)
			}
		})
	}
}
