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
func Bench(b *testing.B, pkg string, c sdktest.Case) {
	b.Helper()
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(ctx)
	mod, err := rt.Compile(ctx, wasmtest.Module(b, pkg))
	if err != nil {
		b.Fatal(err)
	}
	p, err := mod.NewPlugin(ctx, wasmhost.PluginConfig{Name: c.Name, Configuration: []byte(c.Config), Properties: c.Properties})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := sdktest.CPUTime()
	for i := 0; i < b.N; i++ {
		if err := request(ctx, p, &c); err != nil {
			b.Fatal(err)
		}
	}
	sdktest.ReportCPU(b, cpu)
}

func request(ctx context.Context, p *wasmhost.Plugin, c *sdktest.Case) error {
	s, err := p.NewHTTPStream(ctx)
	if err != nil {
		return err
	}
	if _, err := s.RequestHeaders(headers(c.RequestHeaders), c.RequestBody == nil); err != nil {
		return err
	}
	if c.RequestBody != nil && s.LocalResponse() == nil {
		if _, err := s.RequestBody(c.RequestBody, true); err != nil {
			return err
		}
	}
	if c.ResponseHeaders != nil && s.LocalResponse() == nil {
		if _, err := s.ResponseHeaders(headers(c.ResponseHeaders), c.ResponseBody == nil); err != nil {
			return err
		}
		if c.ResponseBody != nil && s.LocalResponse() == nil {
			if _, err := s.ResponseBody(c.ResponseBody, true); err != nil {
				return err
			}
		}
	}
	return s.Done()
}

func headers(pairs [][2]string) *wasmhost.Headers {
	flat := make([]string, 0, 2*len(pairs))
	for _, kv := range pairs {
		flat = append(flat, kv[0], kv[1])
	}
	return wasmhost.NewHeaders(flat...)
}

// BenchStartup measures compile, instantiate and plugin start of pkg's
// module with configuration config, in a fresh runtime each time.
func BenchStartup(b *testing.B, pkg, config string) {
	b.Helper()
	ctx := context.Background()
	wasm := wasmtest.Module(b, pkg)
	b.SetBytes(int64(len(wasm)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{})
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
