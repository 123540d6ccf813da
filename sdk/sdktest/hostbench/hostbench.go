package hostbench

import (
	"context"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
)

// Bench runs c once per iteration through one plugin of pkg's module: new
// stream, request headers (and body, one frame), response headers (and
// body), done. The plugin starts outside the timer; c.Chunk is ignored.
// The runtime is the one traffic runs on: the compiler, uninterruptible
// (see wasmhost.Config.Uninterruptible). It fails when the filter answered
// locally and c.Want.Local did not say so, or the other way round.
func Bench(b *testing.B, pkg string, c sdktest.Case) {
	b.Helper()
	ctx := context.Background()
	p := start(b, pkg, c, nil)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := sdktest.CPUTime()
	var local *wasmhost.LocalResponse
	for i := 0; i < b.N; i++ {
		var err error
		if local, err = request(ctx, p, &c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sdktest.ReportCPU(b, cpu)
	// A request the filter answered itself costs less than one it passed:
	// a benchmark of the wrong path would flatter the filter.
	switch want := c.Want.Local; {
	case want == nil && local != nil:
		b.Fatalf("hostbench: %s: unexpected local response %d", c.Name, local.Status)
	case want != nil && (local == nil || uint32(local.Status) != want.Status):
		b.Fatalf("hostbench: %s: local response %v, want status %d", c.Name, local, want.Status)
	}
}

// Memory runs c requests times through one plugin of pkg's module whose
// VM has environment env (vm_config.environment_variables) and returns the
// size of its linear memory then: what one VM of the filter costs a proxy
// after a while, since linear memory never shrinks. It fails like Bench on
// a local response c.Want.Local did not announce, on the last request.
func Memory(tb testing.TB, pkg string, c sdktest.Case, env map[string]string, requests int) uint64 {
	tb.Helper()
	ctx := context.Background()
	p := start(tb, pkg, c, env)
	var local *wasmhost.LocalResponse
	for range requests {
		var err error
		if local, err = request(ctx, p, &c); err != nil {
			tb.Fatal(err)
		}
	}
	if (local == nil) != (c.Want.Local == nil) {
		tb.Fatalf("hostbench: %s: local response %v, want %v", c.Name, local, c.Want.Local)
	}
	return p.MemoryBytes()
}

// start brings up one plugin of pkg's module with c's configuration on the
// runtime traffic runs on; everything is closed when tb ends.
func start(tb testing.TB, pkg string, c sdktest.Case, env map[string]string) *wasmhost.Plugin {
	tb.Helper()
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Uninterruptible: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Compile(ctx, wasmtest.Module(tb, pkg))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := mod.NewPlugin(ctx, wasmhost.PluginConfig{Name: c.Name, Configuration: []byte(c.Config), Properties: c.Properties, Env: env})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(ctx) })
	return p
}

// request runs one exchange and returns the local response the filter
// sent, if any.
func request(ctx context.Context, p *wasmhost.Plugin, c *sdktest.Case) (*wasmhost.LocalResponse, error) {
	s, err := p.NewHTTPStream(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.RequestHeaders(headers(c.RequestHeaders), c.RequestBody == nil); err != nil {
		return nil, err
	}
	if c.RequestBody != nil && s.LocalResponse() == nil {
		if _, err := s.RequestBody(c.RequestBody, true); err != nil {
			return nil, err
		}
	}
	if c.ResponseHeaders != nil && s.LocalResponse() == nil {
		if _, err := s.ResponseHeaders(headers(c.ResponseHeaders), c.ResponseBody == nil); err != nil {
			return nil, err
		}
		if c.ResponseBody != nil && s.LocalResponse() == nil {
			if _, err := s.ResponseBody(c.ResponseBody, true); err != nil {
				return nil, err
			}
		}
	}
	return s.LocalResponse(), s.Done()
}

func headers(pairs [][2]string) *wasmhost.Headers {
	flat := make([]string, 0, 2*len(pairs))
	for _, kv := range pairs {
		flat = append(flat, kv[0], kv[1])
	}
	return wasmhost.NewHeaders(flat...)
}

// BenchStartup measures compile, instantiate and plugin start of pkg's
// module with configuration config, in a fresh runtime each time (one like
// Bench's: what a proxy loading the module pays).
func BenchStartup(b *testing.B, pkg, config string) {
	b.Helper()
	ctx := context.Background()
	wasm := wasmtest.Module(b, pkg)
	b.SetBytes(int64(len(wasm)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Uninterruptible: true})
		if err != nil {
			b.Fatal(err)
		}
		mod, err := rt.Compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		p, err := mod.NewPlugin(ctx, wasmhost.PluginConfig{Name: pkg, Configuration: []byte(config)})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := rt.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
