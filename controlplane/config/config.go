// Package config is wasmfleet's configuration: a plain struct with Default,
// a Validate that lists every problem at once, and Load for YAML files.
//
// Everything has a default, so `wasmfleet serve` runs with no file at all: it
// watches ./filters.d, keeps state in ./.wasmfleet and serves on loopback.
package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/xdscache"
)

// Defaults. Ports follow ARCHITECTURE.md: xDS 18000, modules 18001, admin 18002.
const (
	DefaultXDSAddr        = "127.0.0.1:18000"
	DefaultModulesAddr    = "127.0.0.1:18001"
	DefaultAdminAddr      = "127.0.0.1:18002"
	DefaultWatchDir       = "filters.d"
	DefaultDataDir        = ".wasmfleet"
	DefaultMode           = ModeManaged
	DefaultListenerName   = "ingress"
	DefaultListenerAddr   = "0.0.0.0:10000"
	DefaultClusterName    = "upstream"
	DefaultFilterSlots    = 8
	DefaultUpstreamAddr   = "127.0.0.1:8080"
	DefaultMaxModuleBytes = 64 << 20
	DefaultTrialTimeout   = 5 * time.Second
	DefaultTrialMemoryMiB = 256
	// DefaultDebounce is how long a watched file must stay unchanged
	// before it is read, unless its writer closes it or a rename puts it in
	// place (Linux), which ends the wait within milliseconds. So it is not
	// on the path of a module copied, built or written in one go, and stays
	// long for what it does guard: a writer that holds the file open and
	// pauses (a slow network copy), a rescan, platforms without close
	// events. Shorter, it would make reading a paused copy likelier and buy
	// those rare cases little; a paused copy that does not look like a
	// whole module is waited for longer anyway (source.looksWhole).
	DefaultDebounce      = 150 * time.Millisecond
	DefaultFailurePolicy = FailClosed
	DefaultCode          = CodeInline
	DefaultRolloutBy     = ByNode
	DefaultPercent       = 100
	DefaultStepInterval  = 5 * time.Minute
	DefaultOCIPoll       = 30 * time.Second
	// DefaultKeepVersions is how many of each filter's newest versions keep
	// their module in data_dir (see Config.KeepVersions).
	DefaultKeepVersions = 10
	// DefaultGOGC is the GOGC every filter's VM gets unless its vm.env sets
	// one: a Go guest's heap then grows to 1.25x the live heap instead of
	// 2x before a collection. Envoy runs one VM per worker per filter and
	// linear memory never shrinks, so the peak is what a node pays: after
	// 10,000 requests the auth filter's memory drops from 5.50 to 4.38 MiB
	// and logging's from 5.50 to 4.31 MiB (transform stays at 3.50);
	// GOGC 10 or 1 go no lower, and a GOMEMLIMIT of 1 MiB makes it worse.
	DefaultGOGC = "25"
	// DefaultNodeIdentity is what a node's client certificate must name:
	// its SPIFFE ID in a URI SAN ({node} is the node id).
	DefaultNodeIdentity = "spiffe://wasmfleet.local/node/{node}"
)

// Mode says which xDS resources wasmfleet owns.
type Mode string

const (
	// ModeManaged serves listeners, routes and clusters as well as the filters.
	ModeManaged Mode = "managed"
	// ModeECDS serves only the filter configs (ECDS), for people who keep their
	// own listeners and reference ours by config_discovery.
	ModeECDS Mode = "ecds"
)

// FailurePolicy is what Envoy does when a filter's code cannot be loaded
// (envoy.extensions.wasm.v3.FailurePolicy).
type FailurePolicy string

const (
	FailClosed FailurePolicy = "FAIL_CLOSED"
	FailOpen   FailurePolicy = "FAIL_OPEN"
	FailReload FailurePolicy = "FAIL_RELOAD"
)

// Code says how module bytes reach Envoy.
type Code string

const (
	// CodeRemote: an http_uri to the module server plus the sha256. Envoy
	// fetches it only while a listener warms: an update to a listener that
	// already serves is ACKed and never fetched (the init manager it would
	// wait on has finished), and new requests then run without the filter.
	// Read in Envoy's source (v1.33 to 1.36), not run against Envoy here.
	CodeRemote Code = "remote"
	// CodeInline: the bytes inside the ECDS resource, loaded while Envoy
	// applies the update, so a module that fails on a node is NACKed. The
	// default.
	CodeInline Code = "inline"
)

// RolloutBy says what a rollout percentage is a share of.
type RolloutBy string

const (
	ByNode    RolloutBy = "node"
	ByRequest RolloutBy = "request"
)

// Config is the whole configuration.
type Config struct {
	Listen Listen `json:"listen"`
	// ModuleBaseURL is the URL Envoy fetches modules from
	// (…/modules/sha256/HEX). Empty means http://<listen.modules>.
	ModuleBaseURL string `json:"module_base_url,omitempty"`
	WatchDir      string `json:"watch_dir"`
	DataDir       string `json:"data_dir"`
	// KeepVersions is how many of each filter's newest versions keep their
	// module bytes in DataDir. Older modules are deleted unless they are the
	// filter's stable or candidate version or marked bad; the version
	// history keeps every record.
	KeepVersions int    `json:"keep_versions"`
	Mode         Mode   `json:"mode"`
	Limits       Limits `json:"limits"`
	// Filters in chain order. Filters found in the watched directory that are
	// not listed here run after the listed ones, in name order, with defaults.
	Filters []Filter `json:"filters,omitempty"`
	// Managed is used in ModeManaged only.
	Managed Managed `json:"managed"`
	// Trust holds the keys modules may be signed with.
	Trust Trust `json:"trust,omitempty"`
	// AdminToken, when set, is required as a bearer token on every admin
	// API call, /metrics included unless AdminMetricsOpen. Required when the
	// admin API is bound beyond loopback.
	AdminToken string `json:"admin_token,omitempty"`
	// AdminTokenFile is a file holding the admin token instead, such as a
	// mounted Kubernetes Secret: the token stays out of the config, and a
	// rotated file takes effect without a restart (it is read again when
	// it changes). Surrounding whitespace is not part of the token.
	AdminTokenFile string `json:"admin_token_file,omitempty"`
	// AdminMetricsOpen serves /metrics without the admin token, for
	// scrapers set up without it (Prometheus can send it: `authorization:
	// {credentials: TOKEN}`). Metrics name filters, nodes and versions.
	// Without an admin token /metrics is open anyway.
	AdminMetricsOpen bool `json:"admin_metrics_open,omitempty"`
	// InsecureRegistries (host:port) may be reached over plain HTTP; every
	// other registry needs HTTPS, loopback included.
	InsecureRegistries []string `json:"insecure_registries,omitempty"`
	// TLS, when its files are set, puts mutual TLS on the xDS and module
	// ports. Required to bind either beyond loopback, unless listen.insecure.
	TLS TLS `json:"tls"`
}

// TLS configures mutual TLS on the xDS and module ports. Every file is PEM
// and read again when it changes (rotation without a restart).
type TLS struct {
	// CertFile and KeyFile are the server certificate (chain) and key.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ClientCAFile is the bundle of CAs a client certificate must chain to.
	// A connection without a valid client certificate is refused.
	ClientCAFile string `json:"client_ca_file,omitempty"`
	// NodeIdentity is the SAN an xDS stream's client certificate must carry
	// for the node.id the stream claims, with {node} standing for the id: a
	// URI SAN when it is a URI ("spiffe://example.org/node/{node}"), a DNS
	// SAN otherwise ("{node}.nodes.example.org"). A stream that claims
	// another id is refused (PermissionDenied) before anything is recorded
	// or sent. Default DefaultNodeIdentity.
	NodeIdentity string `json:"node_identity,omitempty"`
}

// Enabled says whether TLS is configured.
func (t TLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != ""
}

// Listen holds the addresses wasmfleet binds.
type Listen struct {
	XDS     string `json:"xds"`
	Modules string `json:"modules"`
	Admin   string `json:"admin"`
	// Insecure allows binding xDS and the module server beyond loopback
	// without TLS: anyone who reaches the port can then claim any node id,
	// read every filter's configuration and NACK on a node's behalf. For
	// labs only; logged loudly at start.
	Insecure bool `json:"insecure,omitempty"`
}

// Limits bound what a module may cost before any Envoy sees it.
type Limits struct {
	MaxModuleBytes int64    `json:"max_module_bytes"`
	TrialTimeout   Duration `json:"trial_timeout"`
	TrialMemoryMiB int      `json:"trial_memory_mib"`
	// Debounce is how long a watched file must be quiet before it is read,
	// unless its writer closes it or a rename puts it in place first (on
	// Linux; see DefaultDebounce).
	Debounce Duration `json:"debounce"`
	// PushWindow is how many large xDS responses (those carrying inline
	// modules) may be sent and not yet answered at once; the others wait
	// their turn in the control plane, built from each node's latest state
	// when a slot frees. Peak memory is then about this many responses,
	// whatever the fleet's size, and a slow node holds one slot, not the
	// push. Larger pushes faster on many cores, smaller uses less memory.
	PushWindow int `json:"push_window"`
	// PushHoldTimeout frees the window slot of a node that has not
	// answered its response (ACK or NACK) by then (see
	// xdscache.DefaultHoldTimeout for the default's reason).
	PushHoldTimeout Duration `json:"push_hold_timeout"`
	// FollowOutsideSymlinks lets a file in WatchDir be a symlink that leads
	// outside it. Off (the default), such a file is refused, unread, with an
	// error naming it: whoever may add a link to the directory must not get
	// the control plane to read any file it can. Links that stay inside
	// WatchDir (a Kubernetes ConfigMap volume's) are followed either way.
	FollowOutsideSymlinks bool `json:"follow_outside_symlinks"`
}

// Filter is one filter in the chain.
type Filter struct {
	Name string `json:"name"`
	// Source is empty for the watched directory (NAME.wasm) or an
	// oci://REGISTRY/REPO:TAG or oci://REGISTRY/REPO@sha256:HEX reference.
	Source string `json:"source,omitempty"`
	// Required filters keep their last good version when their file is
	// deleted (auth, typically): removing auth must never open the fleet.
	Required      bool          `json:"required,omitempty"`
	FailurePolicy FailurePolicy `json:"failure_policy,omitempty"`
	Code          Code          `json:"code,omitempty"`
	// Config is the plugin configuration the guest reads in
	// proxy_on_configure (Envoy's plugin_config.configuration), as written
	// in the file and decoded to JSON: an object or an array is sent as
	// that JSON, a string as it is (unquoted). PluginConfiguration gives
	// the bytes the guest reads.
	Config json.RawMessage `json:"config,omitempty"`
	// ConfigBase64 is the plugin configuration as bytes, in standard
	// base64, for guests that take binary configuration; Envoy gets it as
	// a BytesValue. It excludes Config, and $secret references do not
	// apply to it.
	ConfigBase64 string `json:"config_base64,omitempty"`
	// RootID is the proxy-wasm root_id; empty is fine for SDK filters.
	RootID  string  `json:"root_id,omitempty"`
	Rollout Rollout `json:"rollout,omitempty"`
	// RequireSignature refuses modules not signed by a key in Trust.
	RequireSignature bool `json:"require_signature,omitempty"`
	// PollInterval is how often an oci:// source's tag is checked.
	PollInterval Duration `json:"poll_interval,omitempty"`
	// AllowOnHeadersStopIteration is the Wasm plugin config's
	// allow_on_headers_stop_iteration. Off (Envoy's default), a filter that
	// returns Pause from a headers callback stops all iteration: its body
	// callbacks do not run until it resumes the stream, so a filter that
	// pauses the headers to wait for the body hangs every request that has
	// one. On, Pause stops only the headers and the body still reaches it.
	// Set it for filters that hold the headers until they have read the
	// body; a filter cannot see the setting.
	AllowOnHeadersStopIteration bool `json:"allow_on_headers_stop_iteration,omitempty"`
	// VM configures the filter's Wasm VMs.
	VM VM `json:"vm,omitempty"`
}

// VM is the part of Envoy's vm_config that wasmfleet lets an operator set.
type VM struct {
	// Env is the guests' environment (vm_config.environment_variables.
	// key_values): a Go filter's runtime reads GOGC and GOMEMLIMIT from it.
	// GOGC defaults to DefaultGOGC; set it to "100" for Go's own default.
	// Envoy keys a running VM by vm_id, VM configuration and code only
	// (makeVmKey), so a change here alone reaches a node's VMs when they
	// are next created, with the next module version.
	Env map[string]string `json:"env,omitempty"`
	// Configuration is what the guest reads in proxy_on_vm_start (Envoy's
	// vm_config.configuration), written like Filter.Config: an object or
	// an array is sent as JSON, a string as it is. It is part of Envoy's
	// VM key (makeVmKey), so a change creates new VMs.
	Configuration json.RawMessage `json:"configuration,omitempty"`
}

// PluginConfiguration returns the bytes the guest reads in
// proxy_on_configure, and whether they were given as bytes (config_base64,
// sent as a BytesValue; otherwise a StringValue). Envoy hands the guest a
// wrapper's value as it is (MessageUtil::anyToBytes,
// source/common/protobuf/utility.h), so both reach it unchanged.
func (f Filter) PluginConfiguration() (b []byte, binary bool) {
	if f.ConfigBase64 != "" {
		b, _ = base64.StdEncoding.DecodeString(f.ConfigBase64) // validate refuses what does not decode
		return b, true
	}
	return guestBytes(f.Config), false
}

// VMConfiguration returns the bytes the guest reads in proxy_on_vm_start.
func (f Filter) VMConfiguration() []byte { return guestBytes(f.VM.Configuration) }

// guestBytes is what a guest reads of a configuration written as the JSON
// value raw: a string's content, the JSON of anything else (validate lets
// only objects, arrays and strings through).
func guestBytes(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

// Rollout says how a new version of a filter replaces the stable one.
type Rollout struct {
	// Percent of the fleet (or of requests) that gets the candidate.
	// Nil means DefaultPercent (100: drop a file, the whole fleet swaps).
	Percent *int      `json:"percent,omitempty"`
	By      RolloutBy `json:"by,omitempty"`
	// Steps are percentages the rollout advances through, each held for
	// Interval while the candidate is healthy. At 100% the candidate runs on
	// every node and is promoted to stable once every connected node has
	// ACKed it (or failed it within MaxFailedNodes, with at least one ACK);
	// until then a NACK still rolls it back.
	Steps    []int    `json:"steps,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	// MaxFailedNodes is how many nodes may fail to load the candidate before
	// it is rolled back; 0 means the first failure rolls back.
	MaxFailedNodes int `json:"max_failed_nodes,omitempty"`
}

// Managed describes the listeners, routes and clusters served in managed mode.
type Managed struct {
	// FilterSlots is how many chain positions each listener's HTTP connection
	// manager reserves (docs/xds-resources.md): chains up to this length can
	// change and reorder without an LDS update, so without a drain.
	FilterSlots int        `json:"filter_slots"`
	Listeners   []Listener `json:"listeners,omitempty"`
	Clusters    []Cluster  `json:"clusters,omitempty"`
	// ModulesTLS, when set, is the client certificate Envoy presents to the
	// module server (the wasmfleet_modules cluster) and the CA it checks
	// the server with: paths on the Envoy's disk, the same on every node.
	// Needs an https module_base_url.
	ModulesTLS *EnvoyTLS `json:"modules_tls,omitempty"`
}

// EnvoyTLS are files on an Envoy's disk for an upstream TLS context.
type EnvoyTLS struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	CAFile   string `json:"ca_file"`
}

// Listener is one Envoy listener with an HTTP connection manager.
type Listener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Routes serve every host (a virtual host named like the listener,
	// domain "*").
	Routes []Route `json:"routes,omitempty"`
	// VirtualHosts serve the hosts they name (see VirtualHost).
	VirtualHosts []VirtualHost `json:"virtual_hosts,omitempty"`
}

// Cluster is an upstream of static endpoints.
type Cluster struct {
	Name      string   `json:"name"`
	Endpoints []string `json:"endpoints"`
}

// Trust holds public keys that may sign modules.
type Trust struct {
	// Keys are paths to PEM public keys (cosign's format).
	Keys []string `json:"keys,omitempty"`
	// RequireSignature refuses unsigned modules for every filter; a
	// filter's own require_signature does it for that filter only.
	RequireSignature bool `json:"require_signature,omitempty"`
}

// Duration is a time.Duration written as "150ms", "5s", "2m" in files.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "5s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"5s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{
		Listen: Listen{
			XDS:     DefaultXDSAddr,
			Modules: DefaultModulesAddr,
			Admin:   DefaultAdminAddr,
		},
		WatchDir:     DefaultWatchDir,
		DataDir:      DefaultDataDir,
		KeepVersions: DefaultKeepVersions,
		Mode:         DefaultMode,
		Limits: Limits{
			MaxModuleBytes:  DefaultMaxModuleBytes,
			TrialTimeout:    Duration(DefaultTrialTimeout),
			TrialMemoryMiB:  DefaultTrialMemoryMiB,
			Debounce:        Duration(DefaultDebounce),
			PushWindow:      xdscache.DefaultPushWindow,
			PushHoldTimeout: Duration(xdscache.DefaultHoldTimeout),
		},
		Managed: Managed{
			FilterSlots: DefaultFilterSlots,
			Listeners: []Listener{{
				Name:    DefaultListenerName,
				Address: DefaultListenerAddr,
				Routes:  []Route{{Prefix: "/", Cluster: DefaultClusterName}},
			}},
			Clusters: []Cluster{{Name: DefaultClusterName, Endpoints: []string{DefaultUpstreamAddr}}},
		},
		TLS: TLS{NodeIdentity: DefaultNodeIdentity},
	}
}

// Load reads a YAML file over the defaults and validates it. Unknown fields
// are errors (a typo must not silently become a default). Every problem is
// reported at once, as Problems naming the file, line and field.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseFile(path, b)
}

// Parse decodes YAML over the defaults, fills per-filter defaults and
// validates; its problems name no file (for bytes that came from none).
func Parse(b []byte) (Config, error) {
	return ParseFile("", b)
}

// ParseFile is Parse for the bytes of a file: its problems name the file
// (as go/parser.ParseFile does, it reads nothing itself).
func ParseFile(file string, b []byte) (Config, error) {
	cfg := Default()
	// encoding/json decodes a list's elements into the ones already there,
	// so a default list would leak into the file's: its first listener would
	// keep the default route, its first cluster the default endpoint. The
	// lists start empty; the defaults come back where the file sets none.
	def := cfg.Managed
	cfg.Managed.Listeners, cfg.Managed.Clusters = nil, nil
	c, decoded := decode(b, &cfg)
	if cfg.Managed.Listeners == nil {
		cfg.Managed.Listeners = def.Listeners
	}
	if cfg.Managed.Clusters == nil {
		cfg.Managed.Clusters = def.Clusters
	}
	var values Problems
	if decoded {
		values = cfg.problems()
	}
	if err := c.report(file, values); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ModuleURL is the base URL Envoy fetches module bytes from.
func (c *Config) ModuleURL() string {
	if c.ModuleBaseURL != "" {
		return c.ModuleBaseURL
	}
	if c.TLS.Enabled() {
		return "https://" + c.Listen.Modules
	}
	return "http://" + c.Listen.Modules
}

// FilterByName returns the configured entry for a filter, or a default entry
// (ok false) for a filter that is only in the watched directory.
func (c *Config) FilterByName(name string) (f Filter, ok bool) {
	for _, f := range c.Filters {
		if f.Name == name {
			return f.WithDefaults(), true
		}
	}
	return Filter{Name: name}.WithDefaults(), false
}

// WithDefaults fills empty fields with their defaults.
func (f Filter) WithDefaults() Filter {
	if f.FailurePolicy == "" {
		f.FailurePolicy = DefaultFailurePolicy
	}
	if f.Code == "" {
		f.Code = DefaultCode
	}
	if f.Rollout.By == "" {
		f.Rollout.By = DefaultRolloutBy
	}
	if f.Rollout.Percent == nil {
		p := DefaultPercent
		if len(f.Rollout.Steps) > 0 {
			p = f.Rollout.Steps[0]
		}
		f.Rollout.Percent = &p
	}
	if len(f.Rollout.Steps) > 0 && f.Rollout.Interval == 0 {
		f.Rollout.Interval = Duration(DefaultStepInterval)
	}
	if f.PollInterval == 0 {
		f.PollInterval = Duration(DefaultOCIPoll)
	}
	if _, ok := f.VM.Env["GOGC"]; !ok {
		f.VM.Env = maps.Clone(f.VM.Env) // never write into the caller's map
		if f.VM.Env == nil {
			f.VM.Env = map[string]string{}
		}
		f.VM.Env["GOGC"] = DefaultGOGC
	}
	return f
}
