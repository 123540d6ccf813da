// Command echoconfig is a test guest that repeats its plugin configuration
// in its logs, as a careless filter might: at debug level always, and at
// error level, failing to configure, when the configuration holds "fail".
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

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	b, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogError("no configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogDebug("configuration: " + string(b))
	if strings.Contains(string(b), "fail") {
		proxywasm.LogError("refusing configuration " + string(b))
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
