// Command ops is a guest that performs one building block of a filter per
// request, chosen by its plugin configuration ({"op": "..."}), so that
// hostbench can price each block on its own in the compiled module.
package main

import (
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

type config struct{ Op string }

func (c *config) DecodeJSON(d *sdk.Decoder) { d.String("op", &c.Op) }
func (c config) Validate() error            { return nil }

var filter = sdk.Filter[config]{
	Name: "ops",
	Setup: func(p *sdk.Plugin[config]) (sdk.HTTPFactory, error) {
		return func(uint32) types.HttpContext { return &ctx{p: p} }, nil
	},
}

func init() { sdk.Run(filter) }

func main() {}

type ctx struct {
	types.DefaultHttpContext
	p *sdk.Plugin[config]
}

var sink int64

// entry and keys serve the entry op, as a filter keeps them per plugin.
var (
	entry sdk.Entry
	keys  = func() []sdk.Key {
		var out []sdk.Key
		for _, k := range []string{"method", "path", "authority", "request_id", "traceparent", "req.user-agent", "req.authorization", "resp.content-type", "x", "status", "duration_us", "bytes_in", "bytes_out"} {
			out = append(out, sdk.NewKey(k))
		}
		return out
	}()
)

func (c *ctx) OnHttpRequestHeaders(int, bool) types.Action {
	switch c.p.Config.Op {
	case "now":
		sink += time.Now().UnixNano()
	case "property":
		b, _ := proxywasm.GetProperty([]string{"request", "time"})
		sink += int64(len(b))
	case "headers":
		h, _ := proxywasm.GetHttpRequestHeaders()
		sink += int64(len(h))
	case "headermap": // the same map, read in place
		h, _ := sdk.RequestHeaders()
		v, _ := h.Get(":path")
		sink += int64(len(v))
	case "headerslookup": // the whole map as pairs, then one lookup
		h, _ := proxywasm.GetHttpRequestHeaders()
		v, _ := sdk.Header(h, ":path")
		sink += int64(len(v))
	case "header": // one value back from the host: a re-entry into the guest to allocate
		v, _ := sdk.RequestHeader(":path")
		sink += int64(len(v))
	case "counter":
		c.p.Metrics.Counter("ops_total").Increment(1)
	case "log":
		c.p.Log.Info("access", sdk.String("path", "/v1/items?id=7"), sdk.Int("status", 200), sdk.String("request_id", "abc-123"))
	case "entry": // an access line of 13 fields, built in a reused Entry and written
		e := entry.Begin(c.p.Log, sdk.LevelInfo, "access")
		for _, k := range keys[:9] {
			e.String(k, "/v1/items?id=7")
		}
		for _, k := range keys[9:] {
			e.Int(k, 200)
		}
		e.Write()
	case "line": // the log op's line built, not written
		sink += int64(len(c.p.Log.Line(sdk.LevelInfo, "access", sdk.String("path", "/v1/items?id=7"), sdk.Int("status", 200), sdk.String("request_id", "abc-123"))))
	case "loginfo":
		proxywasm.LogInfo("access")
	case "json":
		v, _ := jsonv.Parse([]byte(`{"user":{"name":"ann","password":"pw","id":42},"debug":true,"items":[1,2,3]}`))
		sink += int64(len(v.Bytes()))
	case "loop100": // 100 passes over 98 bytes: the cost of a byte in a loop
		str := "/v1/items?id=7/v1/items?id=7/v1/items?id=7/v1/items?id=7/v1/items?id=7/v1/items?id=7/v1/items?id=7"
		for range 100 {
			for i := 0; i < len(str); i++ {
				sink += int64(str[i])
			}
		}
	case "call100": // the cost of a function call
		for i := range 100 {
			sink += noinline(int64(i))
		}
	case "alloc":
		b := make([]byte, 512)
		sink += int64(len(b))
	}
	return types.ActionContinue
}

//go:noinline
func noinline(i int64) int64 { return i + 1 }
