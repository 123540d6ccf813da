// Command gate is a test guest: it answers 403 locally unless the request
// carries the header x-pass, and logs each denial.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader("x-pass"); err == nil && v != "" {
		return types.ActionContinue
	}
	proxywasm.LogWarn("gate: denied")
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"x-denied-by", "gate"}}, []byte("denied\n"), -1); err != nil {
		proxywasm.LogError("gate: " + err.Error())
	}
	return types.ActionPause
}
