// Package demofilter is a small filter that exercises every part of the sdk,
// so that sdk and sdktest can be tested natively and compiled
// (../../testdata/demo is its main package).
package demofilter

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// Config: Deny is a query parameter that, when present, makes the filter
// answer 403; Tag is added to the request as x-demo-tag.
type Config struct {
	Deny  string
	Tag   string
	Limit int
}

var _ sdk.Decodable = (*Config)(nil)

// DecodeJSON names the members.
func (c *Config) DecodeJSON(d *sdk.Decoder) {
	d.String("deny", &c.Deny)
	d.String("tag", &c.Tag)
	d.Int("limit", &c.Limit)
}

// Validate requires tag and a non-negative limit.
func (c Config) Validate() error {
	var errs []error
	if c.Tag == "" {
		errs = append(errs, sdk.Invalid("tag", sdk.ErrRequired, ""))
	}
	if c.Limit < 0 {
		errs = append(errs, sdk.Invalid("limit", sdk.ErrOutOfRange, "must be >= 0"))
	}
	return errors.Join(errs...)
}

// Filter is the demo filter.
var Filter = sdk.Filter[Config]{
	Name:    "demo",
	Default: func() Config { return Config{Deny: "deny"} },
	Setup: func(p *sdk.Plugin[Config]) (sdk.HTTPFactory, error) {
		return func(uint32) types.HttpContext { return &httpContext{p: p} }, nil
	},
}

type httpContext struct {
	types.DefaultHttpContext
	p *sdk.Plugin[Config]
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.p.Metrics.Counter("requests_total").Increment(1)
	path, _ := sdk.RequestHeader(":PATH")
	if _, ok := sdk.QueryParam(path, h.p.Config.Deny); ok {
		h.p.Metrics.Counter("denied_total").Increment(1)
		if err := sdk.SendError(403, "denied", "query parameter "+h.p.Config.Deny, [2]string{"x-demo", "1"}); err != nil {
			h.p.Log.Error("send error", sdk.Err(err))
		}
		return types.ActionPause
	}
	if err := proxywasm.AddHttpRequestHeader("x-demo-tag", h.p.Config.Tag); err != nil {
		h.p.Log.Error("add header", sdk.Err(err))
	}
	h.p.Metrics.Gauge("last_path_len").Set(int64(len(path)))
	h.p.Metrics.Gauge("paths_seen").Add(1)
	h.p.Metrics.Histogram("path_len").Record(uint64(len(path)))
	h.p.Log.Info("request", sdk.String("path", path), sdk.Int("limit", int64(h.p.Config.Limit)), sdk.Bool("ok", true))
	return types.ActionContinue
}
