// Command bodywait is a test guest: it pauses the request headers while a
// body follows, the way a filter that must read the body before the
// request goes on would, and answers 200 "got N bytes" from the body
// callback at the end of the stream. On Envoy that Pause stops the body
// too unless the plugin config sets allow_on_headers_stop_iteration, so
// the request hangs.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	if endOfStream {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (*stream) OnHttpRequestBody(size int, endOfStream bool) types.Action {
	if !endOfStream {
		return types.ActionPause
	}
	body := []byte("got " + strconv.Itoa(size) + " bytes\n")
	if err := proxywasm.SendHttpResponse(200, nil, body, -1); err != nil {
		proxywasm.LogError("bodywait: " + err.Error())
	}
	return types.ActionPause
}
