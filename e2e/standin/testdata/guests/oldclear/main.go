// Command oldclear is a test guest that imports proxy_clear_route_cache,
// which Envoy registers for ABI 0.1.0 modules only, while it declares ABI
// 0.2.x like every SDK module: Envoy cannot link it, so neither may the
// stand-in.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

//go:wasmimport env proxy_clear_route_cache
func clearRouteCache() uint32

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	clearRouteCache()
	return types.ActionContinue
}
