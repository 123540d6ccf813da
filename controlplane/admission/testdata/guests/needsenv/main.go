// Command needsenv is a filter whose proxy_on_vm_start fails unless its VM
// environment (vm_config.environment_variables) sets NEEDSENV=on: it shows
// that the trial run hands a filter the environment Envoy will.
package main

import (
	"os"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	if os.Getenv("NEEDSENV") != "on" {
		proxywasm.LogError("vm: NEEDSENV is not on")
		return types.OnVMStartStatusFailed
	}
	proxywasm.LogInfo("vm: NEEDSENV is on") // the admission tests count trial runs by guest log lines
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
