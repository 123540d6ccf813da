package sdk

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// HTTPFactory makes the per-request context for one HTTP stream.
type HTTPFactory func(contextID uint32) types.HttpContext

// Filter describes an HTTP filter: its name, its configuration type C and
// how to set up a plugin once the configuration is valid.
type Filter[C Config] struct {
	// Name prefixes metrics ("<name>_<metric>") and is the "filter" key of
	// every log line. It should equal the manifest's name.
	Name string
	// Default returns the configuration the plugin's JSON is decoded over;
	// nil means the zero C. It must build a fresh value on every call:
	// decoding writes into the slices and maps it returns.
	Default func() C
	// Setup runs once per plugin configuration, after it decoded and
	// validated, and returns the factory for request contexts. Do per-plugin
	// work here (define metrics, precompute lookups). An error fails
	// OnPluginStart like a bad configuration does.
	Setup func(p *Plugin[C]) (HTTPFactory, error)
}

// Plugin is one running plugin configuration, handed to Setup. The HTTP
// contexts Setup's factory creates usually keep a pointer to it.
type Plugin[C Config] struct {
	// Config is the decoded, validated configuration.
	Config C
	// Log writes JSON lines with "filter": Filter.Name.
	Log Logger
	// Metrics defines host metrics named "<Filter.Name>_<name>".
	Metrics *Metrics
}

// ErrNoSetup is logged when a Filter has no Setup function.
var ErrNoSetup = errors.New("filter has no Setup")

// Run registers f as the module's entry point. Call it from init() in the
// filter's main package; the proxy-wasm SDK reads the registration when the
// host starts the VM.
func Run[C Config](f Filter[C]) {
	proxywasm.SetVMContext(f.VMContext())
}

// VMContext returns the VM context that Run registers; sdktest runs it
// natively in the SDK's host emulator.
func (f Filter[C]) VMContext() types.VMContext {
	return &vmContext[C]{filter: f}
}

type vmContext[C Config] struct {
	types.DefaultVMContext
	filter Filter[C]
}

var _ types.VMContext = (*vmContext[Config])(nil)

func (v *vmContext[C]) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext[C]{filter: v.filter}
}

type pluginContext[C Config] struct {
	types.DefaultPluginContext
	filter  Filter[C]
	newHTTP HTTPFactory
}

var _ types.PluginContext = (*pluginContext[Config])(nil)

// OnPluginStart decodes and validates the configuration. On any problem it
// logs each one at error level with its field and fails, which makes Envoy
// reject the configuration update (NACK) and keep the previous one.
func (p *pluginContext[C]) OnPluginStart(size int) types.OnPluginStartStatus {
	log := NewLogger(p.filter.Name)
	data, ok := readConfiguration(log, size)
	if !ok {
		return types.OnPluginStartStatusFailed
	}
	cfg, err := DecodeConfig(data, p.filter.Default)
	if err != nil {
		LogProblems(log, "invalid plugin configuration", err)
		return types.OnPluginStartStatusFailed
	}
	if p.filter.Setup == nil {
		log.Error("cannot start plugin", Err(ErrNoSetup))
		return types.OnPluginStartStatusFailed
	}
	newHTTP, err := p.filter.Setup(&Plugin[C]{Config: cfg, Log: log, Metrics: NewMetrics(p.filter.Name)})
	if err != nil {
		LogProblems(log, "cannot start plugin", err)
		return types.OnPluginStartStatusFailed
	}
	p.newHTTP = newHTTP
	log.Info("plugin started", Uint("config_bytes", uint64(len(data))))
	return types.OnPluginStartStatusOK
}

// readConfiguration reads the plugin configuration (size bytes, 0 = none).
func readConfiguration(log Logger, size int) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		log.Error("cannot read plugin configuration", Err(err))
		return nil, false
	}
	return data, true
}

// NewHttpContext returns nil (no HTTP filter) if the plugin never started.
func (p *pluginContext[C]) NewHttpContext(contextID uint32) types.HttpContext {
	if p.newHTTP == nil {
		return nil
	}
	return p.newHTTP(contextID)
}

// LogProblems logs each problem in err at error level as its own line with
// msg, "field" (when the problem is a *FieldError) and "error".
func LogProblems(log Logger, msg string, err error) {
	for _, problem := range Problems(err) {
		// A type assertion, not errors.As: errors.As pulls reflection into
		// the module, and Validate returns *FieldError values directly.
		if fe, ok := problem.(*FieldError); ok {
			log.Error(msg, String("field", fe.Field), Err(problem))
			continue
		}
		log.Error(msg, Err(problem))
	}
}
