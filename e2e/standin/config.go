package standin

import (
	"math/rand/v2"
	"runtime"
	"time"

	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// Defaults follow Envoy's where Envoy has one.
const (
	// DefaultFetchBackoff is Envoy's base interval for retrying a remote code fetch.
	DefaultFetchBackoff = time.Second
	// DefaultFetchRetries is Envoy's default num_retries for remote code.
	DefaultFetchRetries = 1
	// DefaultFetchTimeout applies when http_uri has no timeout.
	DefaultFetchTimeout = 5 * time.Second
	// DefaultInitialFetchTimeout is Envoy's initial_fetch_timeout when a
	// config source sets none (Utility::configSourceInitialFetchTimeout).
	DefaultInitialFetchTimeout = 15 * time.Second
	// DefaultRouteTimeout is Envoy's default route timeout.
	DefaultRouteTimeout = 15 * time.Second
	// EnvoyMajor and EnvoyMinor are the version the stand-in claims in its
	// node's user_agent_build_version: a recent Envoy, one that loads Go
	// wasip1 reactor modules (>= 1.33, see FACTS.md).
	EnvoyMajor = 1
	EnvoyMinor = 36
	// DefaultMemoryLimitMiB bounds each Wasm VM's linear memory.
	DefaultMemoryLimitMiB = 256
)

// Config configures a stand-in node.
type Config struct {
	dataplane.Config
	// Log receives the node's own logs (named "standin", with field node).
	// Nil discards them.
	Log *zap.Logger
	// Seed seeds the node's random source (runtime_fraction draws, reconnect
	// jitter); zero seeds from the clock. Tests set it for repeatable splits.
	Seed uint64
	// VMsPerFilter is how many Wasm VMs each loaded filter runs, like Envoy's
	// one VM per worker thread. Zero means GOMAXPROCS.
	VMsPerFilter int
	// FetchBackoff, when set, replaces the retry backoff of every remote code
	// fetch (Envoy's default base is 1 s, or the resource's retry_back_off),
	// so that tests of failing fetches are fast.
	FetchBackoff time.Duration
	// ReconnectBase and ReconnectMax bound the ADS reconnect backoff; zero
	// means the ads package's defaults (Envoy's 500 ms and 30 s).
	ReconnectBase, ReconnectMax time.Duration
	// Interpreter runs Wasm in wazero's interpreter instead of its compiler:
	// no ahead-of-time compilation of each module. BenchmarkProxy compares
	// the cost per request. Tests usually want it.
	Interpreter bool
	// MemoryLimitMiB bounds each VM's memory; zero means DefaultMemoryLimitMiB.
	MemoryLimitMiB int
	// ClusterAddrs sends a cluster's requests (by CDS name) to host:port
	// instead of the endpoints its CDS resource names, so the by-hand
	// stand-in can answer with a built-in upstream. Envoy has no such
	// override, which is why it lives here and not in dataplane.Config.
	ClusterAddrs map[string]string
	// AdminAddr, when set, is where the node serves its admin endpoint
	// (host:port; port 0 picks one, see AdminAddr): the filters' metrics at
	// /stats/prometheus, as Envoy's admin listener serves them.
	AdminAddr string
	// WasmLogLevel (trace, debug, info, warn, error or critical) is the
	// level guests read with proxy_get_log_level and below which their lines
	// are dropped; empty means Envoy's default, info. Envoy answers with its
	// wasm logger's level (Context::getLogLevel in
	// source/extensions/common/wasm/context.cc), which --log-level or
	// --component-log-level wasm:LEVEL set.
	WasmLogLevel string
}

func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.VMsPerFilter <= 0 {
		c.VMsPerFilter = runtime.GOMAXPROCS(0)
	}
	if c.MemoryLimitMiB <= 0 {
		c.MemoryLimitMiB = DefaultMemoryLimitMiB
	}
	if c.WasmLogLevel == "" {
		c.WasmLogLevel = wasmhost.LogInfo.String()
	}
	return c
}

func (c Config) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(c.Seed, stream))
}
