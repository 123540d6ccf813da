// Package stamp is the bypass scenarios' chain probe, shared by the stamp
// and hungrystamp guests: a filter that appends the "label" of its plugin
// configuration to the request header x-ran, so the upstream sees which
// filters ran and in what order ("a", then "a,b", ...). A filter that runs
// twice shows its label twice; one that is skipped is missing.
//
// With "after" set (the bypass scenarios set the header the auth filter adds
// to an authenticated request), a label is written with a trailing "!" when
// that header is absent: the filter ran before auth, or auth did not run.
package stamp

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// Header is the request header the labels are appended to.
const Header = "x-ran"

// Config is the plugin configuration.
type Config struct {
	// Label is appended to Header; it must be set, without a comma, "!"
	// or a space.
	Label string
	// After, when set, is a request header that must be present when the
	// filter runs; a label written without it ends in "!".
	After string
}

var _ sdk.Decodable = (*Config)(nil)

// DecodeJSON names the configuration's members.
func (c *Config) DecodeJSON(d *sdk.Decoder) {
	d.String("label", &c.Label)
	d.String("after", &c.After)
}

// Validate refuses a label that could not be told apart in Header.
func (c Config) Validate() error {
	if c.Label == "" || strings.ContainsAny(c.Label, ",! ") {
		return sdk.Invalid("label", sdk.ErrInvalid, "must be set, without ',', '!' or spaces")
	}
	return nil
}

// kept holds what Filter's reserve allocated, so that it stays allocated.
var kept [][]byte

// Filter is the stamp filter. With reserve > 0 every plugin start first
// allocates (and touches) that many bytes and keeps them: a host whose VM
// memory limit is below that fails to load the filter.
func Filter(reserve int) sdk.Filter[Config] {
	return sdk.Filter[Config]{
		Name: "stamp",
		Setup: func(p *sdk.Plugin[Config]) (sdk.HTTPFactory, error) {
			if reserve > 0 {
				b := make([]byte, reserve)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				kept = append(kept, b)
			}
			label, after := p.Config.Label, sdk.LowerASCII(p.Config.After)
			return func(uint32) types.HttpContext { return &stream{label: label, after: after} }, nil
		},
	}
}

type stream struct {
	types.DefaultHttpContext
	label, after string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	label := s.label
	if s.after != "" {
		if _, ok := sdk.RequestHeader(s.after); !ok {
			label += "!"
		}
	}
	if prev, ok := sdk.RequestHeader(Header); ok {
		label = prev + "," + label
	}
	if err := proxywasm.ReplaceHttpRequestHeader(Header, label); err != nil {
		// Answer rather than pass: a request that reached the upstream
		// without its label would read as a skipped filter.
		sdk.NewLogger("stamp").Error("cannot write "+Header, sdk.Err(err))
		_ = sdk.SendError(500, "stamp_failed", "cannot write "+Header)
		return types.ActionPause
	}
	return types.ActionContinue
}
