package standin

import (
	"testing"
)

// BenchmarkProxy measures one request through the stand-in (HTTP in, two
// Wasm filters, upstream, back), sequentially and from parallel clients,
// with wazero's compiler and its interpreter.
func BenchmarkProxy(b *testing.B) {
	tests := []struct {
		name        string
		interpreter bool
	}{
		{name: "compiler", interpreter: false},
		{name: "interpreter", interpreter: true},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b)
			e.xds.Set(b, nodeID, e.config(b, tagger(b, slot0, "a"), tagger(b, slot1, "b")))
			n := e.startNode(b, func(c *Config) { c.Interpreter = tc.interpreter })
			addr := listenerAddr(b, n)
			b.Run("serial", func(b *testing.B) {
				for b.Loop() {
					if r := get(b, addr, "/"); r.status != 200 {
						b.Fatal(r.status)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r, err := doGet(addr, "/")
						if err != nil || r.status != 200 {
							b.Error(err, r.status)
							return
						}
					}
				})
			})
		})
	}
}
