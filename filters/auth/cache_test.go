package main

import (
	"encoding/binary"
	"io"
	"log"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/sdktest"
)

// TestTokenCacheAcrossRequests sends the same token several times through
// one plugin, natively and compiled, moving the host clock: the second
// request is a cache hit with the same forwarded claims, and once the token
// expires the cached entry no longer lets it through. sdktest runs one
// request per host, so this test drives the emulator itself.
func TestTokenCacheAcrossRequests(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	token := keys.Token(t, jwt.RS256, claims(map[string]any{"exp": now.Add(time.Minute).Unix()}))
	steps := []struct {
		at       time.Time
		status   uint32 // 0: allowed
		hits     uint64
		expired  uint64
		verified uint64
	}{
		{at: now, hits: 0, verified: 1},
		{at: now.Add(30 * time.Second), hits: 1, verified: 2},
		{at: now.Add(59 * time.Second), hits: 2, verified: 3},
		{at: now.Add(2 * time.Minute), status: 401, hits: 2, expired: 1, verified: 3},
	}
	for _, mode := range sdktest.Modes {
		t.Run(string(mode), func(t *testing.T) {
			prev := log.Writer()
			log.SetOutput(io.Discard) // the emulator prints every guest log line
			defer log.SetOutput(prev)
			vm := vmFor(t, mode)
			host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm).
				WithPluginConfiguration([]byte(config(t, 0, 16))))
			defer reset()
			host.StartVM()
			if host.StartPlugin() != types.OnPluginStartStatusOK {
				t.Fatalf("plugin did not start: %q", host.GetErrorLogs())
			}
			for i, s := range steps {
				b := make([]byte, 8)
				binary.LittleEndian.PutUint64(b, uint64(s.at.UnixNano()))
				if err := host.SetProperty([]string{"request", "time"}, b); err != nil {
					t.Fatal(err)
				}
				id := host.InitializeHttpContext()
				host.CallOnRequestHeaders(id, get("/orders", bearer(token)), true)
				local := host.GetSentLocalResponse(id)
				forwarded := host.GetCurrentRequestHeaders(id)
				host.CompleteHttpContext(id)
				switch {
				case s.status == 0 && local != nil:
					t.Fatalf("step %d: got %d %s, want allowed", i, local.StatusCode, local.Data)
				case s.status != 0 && (local == nil || local.StatusCode != s.status):
					t.Fatalf("step %d: got %v, want %d", i, local, s.status)
				case s.status == 0:
					if sub, _ := sdk.Header(forwarded, "x-auth-sub"); sub != "alice" {
						t.Fatalf("step %d: x-auth-sub = %q, want alice", i, sub)
					}
				}
				for name, want := range map[string]uint64{"auth_jwt_cache_hits": s.hits, "auth_denied_expired": s.expired, "auth_allowed_jwt": s.verified} {
					if got, err := host.GetCounterMetric(name); err != nil || got != want {
						t.Fatalf("step %d: %s = %d (%v), want %d", i, name, got, err, want)
					}
				}
			}
		})
	}
}

// vmFor returns the filter natively, or a fresh instance of its compiled
// module that the test closes when it ends.
func vmFor(t testing.TB, mode sdktest.Mode) types.VMContext {
	t.Helper()
	if mode == sdktest.Native {
		return filter.VMContext()
	}
	vm, err := proxytest.NewWasmVMContext(wasmtest.Module(t, "filters/auth"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := vm.Close(); err != nil {
			t.Error(err)
		}
	})
	return vm
}
