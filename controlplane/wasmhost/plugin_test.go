package wasmhost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// emptyModule is a valid wasm module with nothing in it: not proxy-wasm.
var emptyModule = []byte("\x00asm\x01\x00\x00\x00")

// unknownImportModule imports env.proxy_nope, which no host provides.
var unknownImportModule = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" + // type section: func() -> ()
	"\x02\x12\x01\x03env\x0aproxy_nope\x00\x00") // import section

// badSignatureModule exports proxy_on_request_headers taking two
// parameters instead of the ABI's three.
var badSignatureModule = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x0f\x03\x60\x00\x00\x60\x01\x7f\x01\x7f\x60\x02\x7f\x7f\x01\x7f" + // types: ()->(), (i32)->i32, (i32,i32)->i32
	"\x03\x04\x03\x00\x01\x02" + // functions of those types
	"\x07\x51\x03" + // exports
	"\x17proxy_abi_version_0_2_1\x00\x00" +
	"\x18proxy_on_memory_allocate\x00\x01" +
	"\x18proxy_on_request_headers\x00\x02" +
	"\x0a\x0e\x03\x02\x00\x0b\x04\x00\x41\x00\x0b\x04\x00\x41\x00\x0b") // bodies: nothing, return 0, return 0

func TestNewPluginFailures(t *testing.T) {
	tests := []struct {
		name    string
		wasm    []byte // nil = the probe guest
		memMiB  int
		timeout time.Duration
		cfg     PluginConfig
		want    []error
		reason  string
	}{
		{name: "vm start returns false", cfg: PluginConfig{VMConfig: []byte("fail")},
			want: []error{ErrVMStart}, reason: "probe: vm configuration rejected"},
		{name: "configure returns false", cfg: PluginConfig{Configuration: []byte("fail=missing-key")},
			want: []error{ErrConfigure}, reason: "probe: configuration rejected: missing-key"},
		{name: "configure panics", cfg: PluginConfig{Configuration: []byte("panic")},
			want: []error{ErrConfigure, ErrTrap}, reason: "panic: probe: panic in configure"},
		{name: "configure never returns", timeout: 500 * time.Millisecond, cfg: PluginConfig{Configuration: []byte("loop")},
			want: []error{ErrConfigure, ErrTimeout, context.DeadlineExceeded}},
		{name: "memory limit", memMiB: 32, cfg: PluginConfig{Configuration: []byte("oom")},
			want: []error{ErrConfigure, ErrMemoryLimit}},
		{name: "not proxy-wasm", wasm: emptyModule,
			want: []error{ErrInstantiate}, reason: "missing export proxy_abi_version"},
		{name: "unknown import", wasm: unknownImportModule,
			want: []error{ErrInstantiate}, reason: "proxy_nope"},
		{name: "bad export signature", wasm: badSignatureModule,
			want: []error{ErrInstantiate, ErrBadSignature}, reason: "export proxy_on_request_headers: bad export signature: 2 parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testModule(t, probeGuest)
			if tt.memMiB > 0 {
				cfg := testConfig()
				cfg.MemoryLimitMiB = tt.memMiB
				m = compileGuest(t, newRuntime(t, cfg), probeGuest)
			}
			if tt.wasm != nil {
				var err error
				if m, err = m.r.Compile(context.Background(), tt.wasm); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				timeout := tt.timeout
				if raceDetector {
					// The deadline also covers _initialize and vm_start, which
					// the interpreter under -race on a busy machine can take
					// longer than 500 ms for.
					timeout *= 10
				}
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			tt.cfg.Name = "probe"
			p, err := m.NewPlugin(ctx, tt.cfg)
			if err == nil {
				p.Close(context.Background())
				t.Fatal("NewPlugin succeeded")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "wasmhost: probe: ") {
				t.Errorf("error %q does not start with its subject", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not give the reason %q", err, tt.reason)
			}
		})
	}
}

func TestNewRuntimeConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{name: "defaults", cfg: Config{}},
		{name: "interpreter with a limit", cfg: Config{Interpreter: true, MemoryLimitMiB: 64}},
		{name: "whole 4 GiB", cfg: Config{Interpreter: true, MemoryLimitMiB: 4096}},
		{name: "negative limit", cfg: Config{MemoryLimitMiB: -1}, wantErr: ErrMemoryLimitRange},
		{name: "beyond 32-bit memory", cfg: Config{MemoryLimitMiB: 4097}, wantErr: ErrMemoryLimitRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRuntime(context.Background(), tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				r.Close(context.Background())
			}
		})
	}
}
