// Command echoconfig is a test guest that repeats its plugin configuration
// in its logs, as a careless filter might: at debug level always, and at
// error level, failing to configure, when the configuration holds "fail".
// When it holds "spin" it never finishes configuring, so a test can keep
// its trial run going for as long as the trial's time limit.
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}
func init() {
	proxywasm.SetVMContext(&vm{})
}

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

// spins is written on every turn of the spinning loop so it has an effect
// and stays.
var spins uint64

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	b, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogError("no configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogDebug("configuration: " + string(b))
	for strings.Contains(string(b), "spin") {
		spins++
	}
	if strings.Contains(string(b), "fail") {
		proxywasm.LogError("refusing configuration " + string(b))
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
