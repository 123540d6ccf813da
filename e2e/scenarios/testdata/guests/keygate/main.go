// Command keygate is the scenarios' second version of the auth filter: a
// different module that behaves differently in ways a test can see. It
// accepts a request whose x-api-key hashes (SHA-256, hex) to a digest that
// appears anywhere in its plugin configuration, so it takes auth's own
// configuration unchanged (and, like auth, refuses one without keys); it
// marks every request it lets through with x-auth-version: keygate for the
// upstream, and its 401 answers carry the same header.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// Version is the value of the x-auth-version header this filter sets.
const Version = "keygate"

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	config string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil || !strings.Contains(string(cfg), `"sha256"`) {
		// Like auth, refuse to start with no keys rather than deny (or
		// allow) everything.
		proxywasm.LogError("keygate: configuration has no key digests")
		return types.OnPluginStartStatusFailed
	}
	p.config = string(cfg)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{config: p.config} }

type stream struct {
	types.DefaultHttpContext
	config string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	key, err := proxywasm.GetHttpRequestHeader("x-api-key")
	if err == nil && key != "" {
		sum := sha256.Sum256([]byte(key))
		if strings.Contains(s.config, `"`+hex.EncodeToString(sum[:])+`"`) {
			_ = proxywasm.RemoveHttpRequestHeader("x-api-key")
			_ = proxywasm.ReplaceHttpRequestHeader("x-auth-version", Version)
			return types.ActionContinue
		}
	}
	hdrs := [][2]string{{"x-auth-version", Version}, {"www-authenticate", `ApiKey realm="keygate"`}}
	if err := proxywasm.SendHttpResponse(401, hdrs, []byte("unauthorized\n"), -1); err != nil {
		proxywasm.LogError("keygate: " + err.Error())
	}
	return types.ActionPause
}
