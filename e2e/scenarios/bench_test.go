package scenarios

import (
	"fmt"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/scale"
)

// BenchmarkDropToEnforced measures the time from a module file written into
// the watched directory to every node of a three-node fleet answering as
// the new version, and the control plane promoting it: the debounce,
// admission's trial run, the push, every node's load, the ACKs. Each
// iteration swaps auth for keygate or back, each time with a new custom
// section appended so that the digest is new and nothing is cached: not
// admission's verdict, not a node's compiled code. The README's drop-to-
// enforced figure comes from here; scenario 1 only checks that it happens.
func BenchmarkDropToEnforced(b *testing.B) {
	mods := buildModules(b)
	f := newFleet(b, func(c *config.Config) {
		c.Filters = []config.Filter{{Name: "auth", Code: config.CodeInline, Config: authConfig(sharedKey)}}
	})
	for i := 1; i <= fleetSize; i++ {
		f.addNode(fmt.Sprintf("bench-%d", i), nodeOptions{})
	}
	s := &scenario{f: f, mods: mods}
	versions := []struct {
		module  []byte
		keygate bool
	}{{mods.auth, false}, {mods.keygate, true}}
	i := 0
	for b.Loop() {
		v := versions[i%len(versions)]
		// One payload byte: wazero refuses an empty custom section.
		module := scale.AppendCustomSection(v.module, fmt.Sprintf("bench-%d", i), []byte{1})
		i++
		f.writeFile("auth.wasm", module)
		f.awaitErr("every node enforcing the new version", func() error { return s.authBehaves(v.keygate) })
		s.awaitStable("auth", posAuth, types.DigestOf(module))
	}
}
