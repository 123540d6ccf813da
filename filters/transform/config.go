package main

import (
	"errors"
	"strings"

	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Defaults and limits.
const (
	DefaultMaxBodyBytes = 1 << 20
	MaxMaxBodyBytes     = 64 << 20 // spelled out in Validate's message
	OnErrorReject       = "reject"
	OnErrorPass         = "pass"
)

// Config is the transform filter's plugin configuration.
type Config struct {
	Request  Rules
	Response Rules
	// MaxBodyBytes caps a body the filter buffers to edit.
	MaxBodyBytes int
	// OnBodyError is OnErrorReject or OnErrorPass: what happens to a body
	// that is too large or not JSON.
	OnBodyError string
}

// Rules are the edits for one direction.
type Rules struct {
	Headers HeaderRules
	// PathPrefix rewrites ":path" (request only).
	PathPrefix *Rename
	Body       BodyRules
}

// HeaderRules edit headers; names are case-insensitive.
type HeaderRules struct {
	Remove []string
	Rename []Rename
	Set    []Header
	Add    []Header
}

// Header is a name and value.
type Header struct{ Name, Value string }

// Rename moves From to To (header names, body paths or a path prefix).
type Rename struct{ From, To string }

// BodyRules edit a JSON body; paths are dotted member names ("a.b.c").
type BodyRules struct {
	Rename []Rename
	Remove []string
	Set    []BodySet
}

// BodySet sets Path to Value (any JSON; absent means null).
type BodySet struct {
	Path  string
	Value jsonv.Value
}

// DefaultConfig edits nothing and rejects bad bodies.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: DefaultMaxBodyBytes, OnBodyError: OnErrorReject}
}

var _ sdk.Decodable = (*Config)(nil)

// DecodeJSON names the configuration's members.
func (c *Config) DecodeJSON(d *sdk.Decoder) {
	d.Object("request", func(d *sdk.Decoder) {
		decodeRules(d, &c.Request)
		d.Object("path_prefix", func(d *sdk.Decoder) {
			c.Request.PathPrefix = &Rename{}
			decodeRename(d, c.Request.PathPrefix)
		})
	})
	d.Object("response", func(d *sdk.Decoder) { decodeRules(d, &c.Response) })
	d.Int("max_body_bytes", &c.MaxBodyBytes)
	d.String("on_body_error", &c.OnBodyError)
}

func decodeRules(d *sdk.Decoder, r *Rules) {
	d.Object("headers", func(d *sdk.Decoder) {
		d.Strings("remove", &r.Headers.Remove)
		sdk.List(d, "rename", &r.Headers.Rename, decodeRename)
		sdk.List(d, "set", &r.Headers.Set, decodeHeader)
		sdk.List(d, "add", &r.Headers.Add, decodeHeader)
	})
	d.Object("body", func(d *sdk.Decoder) {
		sdk.List(d, "rename", &r.Body.Rename, decodeRename)
		d.Strings("remove", &r.Body.Remove)
		sdk.List(d, "set", &r.Body.Set, func(d *sdk.Decoder, s *BodySet) {
			d.String("path", &s.Path)
			d.Raw("value", &s.Value)
		})
	})
}

func decodeRename(d *sdk.Decoder, r *Rename) {
	d.String("from", &r.From)
	d.String("to", &r.To)
}

func decodeHeader(d *sdk.Decoder, h *Header) {
	d.String("name", &h.Name)
	d.String("value", &h.Value)
}

// Validate reports every problem with its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, err error, detail string) { errs = append(errs, sdk.Invalid(field, err, detail)) }
	c.Request.validate("request", bad)
	c.Response.validate("response", bad)
	if p := c.Request.PathPrefix; p != nil {
		checkPathPrefix("request.path_prefix.from", p.From, bad)
		checkPathPrefix("request.path_prefix.to", p.To, bad)
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > MaxMaxBodyBytes {
		bad("max_body_bytes", sdk.ErrOutOfRange, "must be in 1..67108864")
	}
	if c.OnBodyError != OnErrorReject && c.OnBodyError != OnErrorPass {
		bad("on_body_error", sdk.ErrInvalid, `must be "reject" or "pass"`)
	}
	return errors.Join(errs...)
}

func (r Rules) validate(dir string, bad func(string, error, string)) {
	h, b := dir+".headers.", dir+".body."
	for i, name := range r.Headers.Remove {
		checkHeaderName(at{h + "remove", i, ""}, name, bad)
	}
	for i, rn := range r.Headers.Rename {
		checkHeaderName(at{h + "rename", i, ".from"}, rn.From, bad)
		checkHeaderName(at{h + "rename", i, ".to"}, rn.To, bad)
	}
	checkHeaders(h+"set", r.Headers.Set, bad)
	checkHeaders(h+"add", r.Headers.Add, bad)
	for i, rn := range r.Body.Rename {
		checkBodyPath(at{b + "rename", i, ".from"}, rn.From, bad)
		checkBodyPath(at{b + "rename", i, ".to"}, rn.To, bad)
	}
	for i, p := range r.Body.Remove {
		checkBodyPath(at{b + "remove", i, ""}, p, bad)
	}
	for i, s := range r.Body.Set {
		checkBodyPath(at{b + "set", i, ".path"}, s.Path, bad)
	}
}

// at is the field of element i of a list (plus a member suffix), spelled
// out only when there is a problem to report.
type at struct {
	list   string
	i      int
	suffix string
}

func (a at) String() string { return sdk.Index(a.list, a.i) + a.suffix }

func checkHeaders(list string, headers []Header, bad func(string, error, string)) {
	for i, hd := range headers {
		checkHeaderName(at{list, i, ".name"}, hd.Name, bad)
		if containsAny(hd.Value, "\r\n\x00") {
			bad(at{list, i, ".value"}.String(), sdk.ErrInvalid, "header values cannot contain CR, LF or NUL")
		}
	}
}

// checkHeaderName refuses pseudo-headers: ":path" has its own rule and the
// others are not the filter's to change.
func checkHeaderName(field at, name string, bad func(string, error, string)) {
	switch {
	case name == "":
		bad(field.String(), sdk.ErrRequired, "")
	case name[0] == ':' || !sdk.ValidHeaderName(name):
		bad(field.String(), sdk.ErrInvalid, "not a header name (pseudo-headers cannot be edited)")
	}
}

func checkBodyPath(field at, path string, bad func(string, error, string)) {
	switch {
	case path == "":
		bad(field.String(), sdk.ErrRequired, "")
	case path[0] == '.' || path[len(path)-1] == '.' || containsDots(path):
		bad(field.String(), sdk.ErrInvalid, "empty segment in dotted path")
	}
}

func checkPathPrefix(field, v string, bad func(string, error, string)) {
	if !strings.HasPrefix(v, "/") || containsAny(v, "?# \t\r\n") {
		bad(field, sdk.ErrInvalid, "must start with '/' and contain no query, fragment or whitespace")
	}
}

func containsDots(path string) bool {
	for i := 1; i < len(path); i++ {
		if path[i] == '.' && path[i-1] == '.' {
			return true
		}
	}
	return false
}

// hasBody reports whether the rules edit a body.
func (r *Rules) hasBody() bool {
	return len(r.Body.Rename)+len(r.Body.Remove)+len(r.Body.Set) > 0
}

// containsAny is strings.ContainsAny for ASCII sets, without the Unicode
// machinery that one brings into the module.
func containsAny(s, set string) bool {
	for i := 0; i < len(set); i++ {
		if strings.IndexByte(s, set[i]) >= 0 {
			return true
		}
	}
	return false
}
