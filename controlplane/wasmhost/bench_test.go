package wasmhost

import (
	"context"
	"testing"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// The benchmarks use the stamp guest: a small filter (2.3 MB, Go runtime
// included) that touches headers on both directions.

func BenchmarkCompile(b *testing.B) {
	wasm := wasmtest.Module(b, stampGuest)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			r := newRuntime(b, Config{Interpreter: e.cfg.Interpreter}) // no cache: measure compiling
			b.SetBytes(int64(len(wasm)))
			for b.Loop() {
				m, err := r.Compile(context.Background(), wasm)
				if err != nil {
					b.Fatal(err)
				}
				m.Close(context.Background())
			}
		})
	}
}

func BenchmarkNewPlugin(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			m := engineModule(b, e.cfg, stampGuest)
			cfg := PluginConfig{Name: "bench", Configuration: []byte("bench")}
			for b.Loop() {
				p, err := m.NewPlugin(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				p.Close(context.Background())
			}
		})
	}
}

// BenchmarkRequest is one exchange: stream create, request headers,
// response headers, done.
func BenchmarkRequest(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			p := newPlugin(b, engineModule(b, e.cfg, stampGuest), PluginConfig{Name: "bench", Configuration: []byte("bench")})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				s, err := p.NewHTTPStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.RequestHeaders(NewHeaders(":method", "GET", ":path", "/", ":authority", "a"), true); err != nil {
					b.Fatal(err)
				}
				if _, err := s.ResponseHeaders(NewHeaders(":status", "200"), true); err != nil {
					b.Fatal(err)
				}
				if err := s.Done(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
