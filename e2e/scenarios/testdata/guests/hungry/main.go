// Command hungry is a filter that needs a lot of memory to start: its
// proxy_on_configure allocates 48 MiB and keeps it. A host with a smaller
// memory limit per VM fails to load it; one with a larger limit (the control
// plane's trial run, most nodes) loads it, after which it lets every request
// through unchanged. It takes any plugin configuration.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// need is what the filter allocates at start.
const need = 48 << 20

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	kept []byte
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	p.kept = make([]byte, need)
	for i := 0; i < len(p.kept); i += 4096 {
		p.kept[i] = 1
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
