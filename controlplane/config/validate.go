package config

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
	"github.com/wasmfleet/wasmfleet/controlplane/secrets"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

// Sentinel errors; Validate wraps each problem in one of them with the field
// path, so callers can test with errors.Is and people can read which field.
var (
	ErrSyntax        = errors.New("not valid YAML")
	ErrAddress       = errors.New("invalid address")
	ErrRequired      = errors.New("required")
	ErrInvalidValue  = errors.New("invalid value")
	ErrDuplicate     = errors.New("duplicate name")
	ErrFilterName    = errors.New("filter names are lower-case letters, digits, '-' and '_', starting with a letter")
	ErrUnknownRef    = errors.New("refers to an undefined name")
	ErrOutOfRange    = errors.New("out of range")
	ErrPluginConfig  = errors.New("configuration must be an object, an array or a string")
	ErrInsecureAdmin = errors.New("admin API bound beyond loopback needs admin_token or admin_token_file")
	ErrInsecureBind  = errors.New("bound beyond loopback without tls (set tls, or listen.insecure: true for a lab)")
)

var filterNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ValidFilterName reports whether name can be a filter (and so a file) name.
func ValidFilterName(name string) bool { return filterNameRE.MatchString(name) }

// Validate returns every problem in the config as Problems, each naming its
// field (with no position: a Config in memory has none).
func (c *Config) Validate() error {
	return c.problems().err()
}

// problems is every problem in the config's values, in path order.
func (c *Config) problems() Problems {
	var ps Problems
	bad := ps.add

	for field, addr := range map[string]string{
		"listen.xds": c.Listen.XDS, "listen.modules": c.Listen.Modules, "listen.admin": c.Listen.Admin,
	} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(field, ErrAddress, "%q: %v", addr, err)
		}
	}
	if host, _, err := net.SplitHostPort(c.Listen.Admin); err == nil && !isLoopback(host) && c.AdminToken == "" && c.AdminTokenFile == "" {
		bad("admin_token", ErrInsecureAdmin, "listen.admin is %q", c.Listen.Admin)
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		bad("admin_token_file", ErrInvalidValue, "set admin_token or admin_token_file, not both")
	}
	c.validateTLS(&ps)
	if c.ModuleBaseURL != "" {
		if u, err := url.Parse(c.ModuleBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("module_base_url", ErrInvalidValue, "%q is not an http(s) URL", c.ModuleBaseURL)
		}
	}
	if c.WatchDir == "" {
		bad("watch_dir", ErrRequired, "")
	}
	if c.DataDir == "" {
		bad("data_dir", ErrRequired, "")
	}
	if c.KeepVersions < 1 {
		bad("keep_versions", ErrOutOfRange, "%d: at least 1", c.KeepVersions)
	}
	if c.Mode != ModeManaged && c.Mode != ModeECDS {
		bad("mode", ErrInvalidValue, "%q (want %q or %q)", c.Mode, ModeManaged, ModeECDS)
	}
	if c.Limits.MaxModuleBytes <= 0 {
		bad("limits.max_module_bytes", ErrOutOfRange, "must be positive")
	}
	if c.Limits.TrialTimeout <= 0 {
		bad("limits.trial_timeout", ErrOutOfRange, "must be positive")
	}
	if c.Limits.TrialMemoryMiB <= 0 || c.Limits.TrialMemoryMiB > 4096 {
		bad("limits.trial_memory_mib", ErrOutOfRange, "%d (1..4096)", c.Limits.TrialMemoryMiB)
	}
	if c.Limits.Debounce < 0 {
		bad("limits.debounce", ErrOutOfRange, "must not be negative")
	}
	if c.Limits.PushWindow < 1 {
		bad("limits.push_window", ErrOutOfRange, "%d: at least 1", c.Limits.PushWindow)
	}
	if c.Limits.PushHoldTimeout <= 0 {
		bad("limits.push_hold_timeout", ErrOutOfRange, "must be positive")
	}

	needKeys := c.Trust.RequireSignature
	seen := map[string]bool{}
	for i, f := range c.Filters {
		needKeys = needKeys || f.RequireSignature
		field := fmt.Sprintf("filters[%d]", i)
		switch {
		case f.Name == "":
			bad(field+".name", ErrRequired, "")
		case !ValidFilterName(f.Name):
			bad(field+".name", ErrFilterName, "%q", f.Name)
		case seen[f.Name]:
			bad(field+".name", ErrDuplicate, "%q", f.Name)
		}
		seen[f.Name] = true
		f.validate(&ps, field)
		if c.Mode == ModeECDS && f.Rollout.By == ByRequest {
			bad(field+".rollout.by", ErrInvalidValue, "request splits need wasmfleet's routes, which mode: ecds does not serve; use by: node")
		}
	}

	if needKeys && len(c.Trust.Keys) == 0 {
		bad("trust.keys", ErrRequired, "a signature is required but no key is trusted")
	}
	for i, r := range c.InsecureRegistries {
		if _, _, err := net.SplitHostPort(r); err != nil && !strings.Contains(r, ".") && r != "localhost" {
			bad(fmt.Sprintf("insecure_registries[%d]", i), ErrInvalidValue, "%q (want host or host:port)", r)
		}
	}
	if c.Mode != ModeECDS {
		clusters := map[string]bool{}
		for i, cl := range c.Managed.Clusters {
			field := fmt.Sprintf("managed.clusters[%d]", i)
			if cl.Name == "" {
				bad(field+".name", ErrRequired, "")
			} else if clusters[cl.Name] {
				bad(field+".name", ErrDuplicate, "%q", cl.Name)
			}
			clusters[cl.Name] = true
			if len(cl.Endpoints) == 0 {
				bad(field+".endpoints", ErrRequired, "")
			}
			for j, ep := range cl.Endpoints {
				if _, _, err := net.SplitHostPort(ep); err != nil {
					bad(fmt.Sprintf("%s.endpoints[%d]", field, j), ErrAddress, "%q: %v", ep, err)
				}
			}
		}
		listeners := map[string]bool{}
		for i, l := range c.Managed.Listeners {
			field := fmt.Sprintf("managed.listeners[%d]", i)
			if l.Name == "" {
				bad(field+".name", ErrRequired, "")
			} else if listeners[l.Name] {
				bad(field+".name", ErrDuplicate, "%q", l.Name)
			}
			listeners[l.Name] = true
			if _, _, err := net.SplitHostPort(l.Address); err != nil {
				bad(field+".address", ErrAddress, "%q: %v", l.Address, err)
			}
			l.validateRoutes(&ps, field, clusters)
		}
		if c.Managed.FilterSlots < 1 || c.Managed.FilterSlots > 64 {
			bad("managed.filter_slots", ErrOutOfRange, "%d (1..64)", c.Managed.FilterSlots)
		}
		if len(c.Managed.Listeners) == 0 {
			bad("managed.listeners", ErrRequired, "managed mode needs at least one listener")
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return ps
}

// validateTLS checks the tls section, the loopback rule for the xDS and
// module ports, and the Envoy-side module TLS files.
func (c *Config) validateTLS(ps *Problems) {
	bad := ps.add
	t := c.TLS
	if t.Enabled() {
		for field, v := range map[string]string{"tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile, "tls.client_ca_file": t.ClientCAFile} {
			if v == "" {
				bad(field, ErrRequired, "tls needs cert_file, key_file and client_ca_file")
			}
		}
		if c.Listen.Insecure {
			bad("listen.insecure", ErrInvalidValue, "tls is configured; insecure is for running without it")
		}
		if u, err := url.Parse(c.ModuleBaseURL); c.ModuleBaseURL != "" && err == nil && u.Scheme == "http" {
			bad("module_base_url", ErrInvalidValue, "%q: the module server speaks TLS when tls is set; use https", c.ModuleBaseURL)
		}
	} else if !c.Listen.Insecure {
		for _, l := range []struct{ field, addr string }{{"listen.xds", c.Listen.XDS}, {"listen.modules", c.Listen.Modules}} {
			if host, _, err := net.SplitHostPort(l.addr); err == nil && !isLoopback(host) {
				bad(l.field, ErrInsecureBind, "%q", l.addr)
			}
		}
	}
	if _, err := mtls.ParseNodeIdentity(cmp.Or(t.NodeIdentity, DefaultNodeIdentity)); err != nil {
		bad("tls.node_identity", ErrInvalidValue, "%v", err)
	}
	if m := c.Managed.ModulesTLS; m != nil {
		for field, v := range map[string]string{"cert_file": m.CertFile, "key_file": m.KeyFile, "ca_file": m.CAFile} {
			if v == "" {
				bad("managed.modules_tls."+field, ErrRequired, "")
			}
		}
		if !strings.HasPrefix(c.ModuleURL(), "https://") {
			bad("managed.modules_tls", ErrInvalidValue, "needs an https module_base_url (or tls, which makes the default one https)")
		}
	}
}

// validate checks one filter entry; prefix is its path ("filters[2]", or
// empty in its own NAME.yaml).
func (f Filter) validate(ps *Problems, prefix string) {
	bad := func(sub string, sentinel error, format string, args ...any) {
		ps.add(join(prefix, sub), sentinel, format, args...)
	}
	switch f.FailurePolicy {
	case "", FailClosed, FailOpen, FailReload:
	default:
		bad("failure_policy", ErrInvalidValue, "%q (want FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD)", f.FailurePolicy)
	}
	switch f.Code {
	case "", CodeRemote, CodeInline:
	default:
		bad("code", ErrInvalidValue, "%q (want remote or inline)", f.Code)
	}
	if f.Source != "" {
		if _, err := ociartifact.ParseRef(f.Source); err != nil {
			bad("source", ErrInvalidValue, "%v (want empty for the watched directory, or oci://REGISTRY/REPO:TAG or @sha256:HEX)", err)
		}
	}
	if !guestConfigKind(f.Config) {
		bad("config", ErrPluginConfig, "got %s (quote a number or boolean to send it as text)", truncate(string(f.Config), 40))
	}
	if f.ConfigBase64 != "" {
		if len(f.Config) > 0 {
			bad("config_base64", ErrInvalidValue, "set config or config_base64, not both")
		}
		if _, err := base64.StdEncoding.DecodeString(f.ConfigBase64); err != nil {
			bad("config_base64", ErrInvalidValue, "not standard base64: %v", err)
		}
	}
	if !guestConfigKind(f.VM.Configuration) {
		bad("vm.configuration", ErrPluginConfig, "got %s (quote a number or boolean to send it as text)", truncate(string(f.VM.Configuration), 40))
	}
	if refs, _ := secrets.Refs(f.VM.Configuration); len(refs) > 0 {
		bad("vm.configuration", ErrInvalidValue, "%s: $secret references are resolved in config only", refs[0].Path)
	}
	for _, k := range slices.Sorted(maps.Keys(f.VM.Env)) {
		// WASI environ entries are "KEY=VALUE\x00": the key cannot hold
		// either separator, the value not the terminator.
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(f.VM.Env[k], "\x00") {
			bad(field("vm.env", k), ErrInvalidValue, "names are non-empty without '=' or NUL, values without NUL")
		}
	}
	r := f.Rollout
	if r.Percent != nil && (*r.Percent < 0 || *r.Percent > 100) {
		bad("rollout.percent", ErrOutOfRange, "%d (0..100)", *r.Percent)
	}
	switch r.By {
	case "", ByNode, ByRequest:
	default:
		bad("rollout.by", ErrInvalidValue, "%q (want node or request)", r.By)
	}
	for i, s := range r.Steps {
		if s <= 0 || s > 100 {
			bad(fmt.Sprintf("rollout.steps[%d]", i), ErrOutOfRange, "%d (1..100)", s)
		}
		if i > 0 && s <= r.Steps[i-1] {
			bad(fmt.Sprintf("rollout.steps[%d]", i), ErrInvalidValue, "%d: steps must increase", s)
		}
	}
	if len(r.Steps) > 0 && r.Steps[len(r.Steps)-1] != 100 {
		bad("rollout.steps", ErrInvalidValue, "the last step must be 100")
	}
	if r.Interval < 0 {
		bad("rollout.interval", ErrOutOfRange, "must not be negative")
	}
	if r.MaxFailedNodes < 0 {
		bad("rollout.max_failed_nodes", ErrOutOfRange, "must not be negative")
	}
	if f.PollInterval < 0 {
		bad("poll_interval", ErrOutOfRange, "must not be negative")
	}
}

// guestConfigKind reports whether raw, a configuration as decoded from
// YAML, is absent or one of the kinds that have one reading as bytes: an
// object or an array (its JSON) or a string (its content). A YAML number or
// boolean has several spellings (1.0, 1, yes), so it is refused.
func guestConfigKind(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return true
	}
	switch raw[0] {
	case '{', '[', '"':
		return json.Valid(raw)
	}
	return false
}

// ParseFilterSettings reads a filter's NAME.yaml (the same fields as an entry
// under filters:, without name) over base, the entry from the main config.
// Unknown fields are errors; every problem is reported, as Problems naming
// file, the line and the field.
func ParseFilterSettings(file string, base Filter, b []byte) (Filter, error) {
	f := base.clone()
	c, decoded := decode(b, &f)
	var values Problems
	if decoded {
		if f.Name != base.Name {
			values.add("name", ErrInvalidValue, "%q, but the file names filter %q", f.Name, base.Name)
		}
		f.validate(&values, "")
	}
	if err := c.report(file, values); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// clone returns a copy sharing no memory with f: decoding YAML over a
// shallow copy would write through to f's plugin configuration bytes, its
// percent, its steps and its VM environment (which are the running config's).
func (f Filter) clone() Filter {
	f.Config = bytes.Clone(f.Config)
	f.VM.Configuration = bytes.Clone(f.VM.Configuration)
	f.VM.Env = maps.Clone(f.VM.Env)
	f.Rollout.Steps = slices.Clone(f.Rollout.Steps)
	if f.Rollout.Percent != nil {
		p := *f.Rollout.Percent
		f.Rollout.Percent = &p
	}
	return f
}

// FilterOrder returns the chain order: configured filters first, then the
// others in name order. present lists the filters that have a module.
func (c *Config) FilterOrder(present []string) []string {
	var order []string
	listed := map[string]bool{}
	for _, f := range c.Filters {
		listed[f.Name] = true
		if slices.Contains(present, f.Name) {
			order = append(order, f.Name)
		}
	}
	var rest []string
	for _, name := range present {
		if !listed[name] {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(order, rest...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
