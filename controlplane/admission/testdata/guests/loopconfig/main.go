// Command loopconfig is a filter whose proxy_on_configure never returns:
// the trial run's time limit must stop it.
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

// spins is written on every iteration so the loop has an effect and stays.
var spins uint64

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	proxywasm.LogInfo("configure: spinning forever")
	for {
		spins++
	}
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
