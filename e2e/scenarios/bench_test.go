package scenarios

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// BenchmarkDropToEnforced measures the time from a module file written into
// the watched directory to every node of a three-node fleet answering as
// the new version, and the control plane promoting it: the debounce,
// admission's trial run, the push, every node's load, the ACKs. Each
// iteration swaps auth for keygate or back, each time with a new custom
// section appended so that the digest is new and nothing is cached: not
// admission's verdict, not a node's compiled code. Scenario 1 asserts the
// 2 s bound; this says how far inside it the fleet is.
func BenchmarkDropToEnforced(b *testing.B) {
	mods := buildModules(b)
	f := newFleet(b, func(c *config.Config) {
		c.Filters = []config.Filter{{Name: "auth", Code: config.CodeInline, Config: authConfig(sharedKey)}}
	})
	for i := 1; i <= fleetSize; i++ {
		f.addNode("bench-"+string(rune('0'+i)), nodeOptions{})
	}
	s := &scenario{f: f, mods: mods}
	versions := []struct {
		module  []byte
		keygate bool
	}{{mods.auth, false}, {mods.keygate, true}}
	i := 0
	for b.Loop() {
		v := versions[i%len(versions)]
		module := withCustomSection(v.module, fmt.Sprintf("bench-%d", i))
		i++
		f.writeFile("auth.wasm", module)
		f.awaitErr("every node enforcing the new version", func() error { return s.authBehaves(v.keygate) })
		s.awaitStable("auth", posAuth, types.DigestOf(module))
	}
}

// withCustomSection returns module with a custom section named name
// appended: the same code under a new digest. (The section carries one
// payload byte: wazero refuses an empty one.)
func withCustomSection(module []byte, name string) []byte {
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, 1)
	out := append([]byte(nil), module...)
	out = append(out, 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}
