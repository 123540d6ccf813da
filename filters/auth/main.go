package main

import (
	"encoding/binary"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/authn"
	"github.com/wasmfleet/wasmfleet/sdk"
)

// filter is the auth filter as the sdk runs it; tests hand its VMContext to
// sdktest.
var filter = sdk.Filter[authn.Config]{Name: "auth", Default: authn.Default, Setup: setup}

func init() { sdk.Run(filter) }

func main() {}

// Metric names (prefixed "auth_" by the sdk).
const (
	metricAllowed   = "allowed_"
	metricDenied    = "denied_"
	metricCacheHits = "jwt_cache_hits"
)

// plugin is what every request context of one plugin configuration shares.
type plugin struct {
	auth authn.Authenticator
	log  sdk.Logger
	// outcomes counts requests by reason, allowed and denied alike.
	outcomes  map[authn.Reason]sdk.Counter
	cacheHits sdk.Counter
}

// setup builds the Authenticator and defines every counter up front, so a
// dashboard shows zeros rather than missing series, and a request costs one
// map lookup per count.
func setup(p *sdk.Plugin[authn.Config]) (sdk.HTTPFactory, error) {
	a, err := authn.New(p.Config)
	if err != nil {
		return nil, err
	}
	pl := &plugin{auth: a, log: p.Log, outcomes: map[authn.Reason]sdk.Counter{}}
	for _, r := range []authn.Reason{authn.AllowedBypass, authn.AllowedAPIKey, authn.AllowedJWT} {
		pl.outcomes[r] = p.Metrics.Counter(metricAllowed + string(r))
	}
	for _, r := range authn.DenyReasons {
		pl.outcomes[r] = p.Metrics.Counter(metricDenied + string(r))
	}
	pl.cacheHits = p.Metrics.Counter(metricCacheHits)
	return func(uint32) types.HttpContext { return &httpContext{plugin: pl} }, nil
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *plugin
}

var _ types.HttpContext = (*httpContext)(nil)

// OnHttpRequestHeaders is the whole filter: decide, then strip, add, or
// answer 401.
func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	p := c.plugin
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		p.log.Error("cannot read request headers", sdk.Err(err))
		return c.fail()
	}
	d := p.auth.Check(headers, requestTime)
	for _, name := range d.Remove {
		if _, present := sdk.Header(headers, name); present {
			if err := proxywasm.RemoveHttpRequestHeader(name); err != nil {
				p.log.Error("cannot remove request header", sdk.String("header", name), sdk.Err(err))
				return c.fail()
			}
		}
	}
	if !d.Allowed {
		return c.deny(headers, d)
	}
	if d.Path != "" {
		if err := proxywasm.ReplaceHttpRequestHeader(":path", d.Path); err != nil {
			p.log.Error("cannot remove the api key from the path", sdk.Err(err))
			return c.fail()
		}
	}
	for _, h := range d.Add {
		if err := proxywasm.ReplaceHttpRequestHeader(h[0], h[1]); err != nil {
			p.log.Error("cannot set request header", sdk.String("header", h[0]), sdk.Err(err))
			return c.fail()
		}
	}
	p.outcomes[d.Reason].Increment(1)
	if d.Cached {
		p.cacheHits.Increment(1)
	}
	return types.ActionContinue
}

// deny counts and logs the denial and answers 401. The logged path has no
// query string: it may hold an API key.
func (c *httpContext) deny(headers [][2]string, d authn.Decision) types.Action {
	p := c.plugin
	p.outcomes[d.Reason].Increment(1)
	method, _ := sdk.Header(headers, ":method")
	path, _ := sdk.Header(headers, ":path")
	for i := 0; i < len(path); i++ {
		if path[i] == '?' || path[i] == '#' {
			path = path[:i]
			break
		}
	}
	p.log.Warn("request denied", sdk.String("reason", string(d.Reason)), sdk.Err(d.Err),
		sdk.String("method", method), sdk.String("path", path))
	extra := make([][2]string, 0, len(d.Challenges))
	for _, ch := range d.Challenges {
		extra = append(extra, [2]string{"www-authenticate", ch})
	}
	if err := sdk.SendError(401, d.Code, d.Detail, extra...); err != nil {
		p.log.Error("cannot send 401", sdk.Err(err))
	}
	return types.ActionPause
}

// fail answers 500 when the host misbehaves: an auth filter that cannot do
// its job must not let the request through.
func (c *httpContext) fail() types.Action {
	if err := sdk.SendError(500, "internal_error", "auth filter failed"); err != nil {
		c.plugin.log.Error("cannot send 500", sdk.Err(err))
	}
	return types.ActionPause
}

// requestTime is when Envoy received the request: the "request.time"
// property, Unix nanoseconds as a little-endian int64 (what Envoy's wasm
// property serialiser writes for a timestamp). A host without it leaves
// the module's own clock (WASI clock_time_get).
func requestTime() int64 {
	b, err := proxywasm.GetProperty([]string{"request", "time"})
	if err != nil || len(b) != 8 {
		return time.Now().UnixNano()
	}
	return int64(binary.LittleEndian.Uint64(b))
}
