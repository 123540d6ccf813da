package scenarios

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// TestRegistrySource is issue 6's fleet scenario: a filter comes from a tag
// in a real OCI registry (go-containerregistry's, in process). Pushing a
// new module to the tag swaps the fleet; moving the tag back swaps it back.
func TestRegistrySource(t *testing.T) {
	mods := buildModules(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, err := ociartifact.ParseRef("oci://" + host + "/filters/auth:live")
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t, func(c *config.Config) {
		c.InsecureRegistries = []string{host}
		c.Filters = []config.Filter{{
			Name: "auth", Source: ref.String(), PollInterval: config.Duration(50 * time.Millisecond),
			Code: config.CodeInline, Config: authConfig(sharedKey, alphaKey),
		}}
	})
	for _, id := range []string{"reg-1", "reg-2", "reg-3"} {
		f.addNode(id, nodeOptions{})
	}
	s := &rolloutScenario{f: f, mods: mods}
	push := func(module []byte) types.Digest {
		t.Helper()
		if _, err := ociartifact.Push(context.Background(), ref, "auth.wasm", module, nil, ociartifact.Remote{Insecure: true}); err != nil {
			t.Fatalf("push: %v", err)
		}
		return types.DigestOf(module)
	}
	swapped := func(d types.Digest) {
		t.Helper()
		f.await("every node on "+mods.name(d)+" from the registry", func() bool {
			st := s.authState()
			return st.Stable == d && st.Candidate == ""
		})
		s.awaitSplit(0, d, d)
	}

	swapped(push(mods.auth))
	swapped(push(mods.keygate))
	swapped(push(mods.auth))

	// Each version came from the registry, pinned by digest.
	for _, v := range f.history("auth") {
		if v.Origin.Kind != string(types.OriginOCI) || !strings.Contains(v.Origin.Ref, host+"/filters/auth@sha256:") {
			t.Errorf("version %s came from %+v, want the registry pinned by digest", v.Digest.Short(), v.Origin)
		}
	}
}
