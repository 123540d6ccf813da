// Command hog is a filter whose proxy_on_configure keeps allocating memory
// until the host refuses to grow it.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct{ types.DefaultPluginContext }

// kept holds every chunk so none can be collected.
var kept [][]byte

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	for range 4096 { // 4 GiB: more than any host allows
		chunk := make([]byte, 1<<20)
		chunk[len(chunk)-1] = 1
		kept = append(kept, chunk)
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
