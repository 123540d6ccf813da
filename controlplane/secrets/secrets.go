package secrets

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Key is the member that makes an object a reference.
const Key = "$secret"

// MaxValueBytes bounds a secret file: keys and certificates are far smaller.
const MaxValueBytes = 64 << 10

// Redacted replaces a secret's value in text.
const Redacted = "<redacted>"

// Errors of Resolve and Refs; test them with errors.Is.
var (
	// ErrReference: a "$secret" member that is not a well-formed reference.
	ErrReference = errors.New(`malformed $secret reference (want {"$secret": {"file": "/absolute/path"}} or {"$secret": {"env": "NAME"}})`)
	// ErrUnavailable: the file cannot be read or is unusable, or the
	// variable is not set or empty.
	ErrUnavailable = errors.New("secret unavailable")
	// ErrSyntax: the configuration is not JSON.
	ErrSyntax = errors.New("plugin configuration is not JSON")
)

// Source is where a secret's value comes from: exactly one field is set.
type Source struct {
	File string
	Env  string
}

// String names the source, never its value: `file /etc/x` or `env NAME`.
func (s Source) String() string {
	if s.File != "" {
		return "file " + s.File
	}
	return "env " + s.Env
}

// Ref is one reference in a configuration.
type Ref struct {
	// Path locates the value in the configuration, e.g. config.jwt.jwks.keys[0].k.
	Path   string
	Source Source
}

// Resolved is a configuration with its references replaced by their values.
// It prints (fmt, JSON) without them.
type Resolved struct {
	// Config is the configuration for admission and Envoy. When there was
	// nothing to resolve it is the input itself, byte for byte.
	Config []byte
	// values are the resolved secrets, longest first.
	values []string
}

// String says how many secrets were resolved, never which.
func (r Resolved) String() string { return fmt.Sprintf("secrets.Resolved{%d secrets}", len(r.values)) }

// GoString keeps the values out of %#v too.
func (r Resolved) GoString() string { return r.String() }

// MarshalJSON keeps the configuration out of JSON (zap.Any, for one).
func (r Resolved) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// Secrets is how many references were resolved.
func (r Resolved) Secrets() int { return len(r.values) }

// Redact replaces every resolved value in s with Redacted.
func (r Resolved) Redact(s string) string {
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

// RedactError returns err with every resolved value removed from its
// message; errors.Is and errors.As still see err.
func (r Resolved) RedactError(err error) error {
	if err == nil || len(r.values) == 0 {
		return err
	}
	msg := err.Error()
	if red := r.Redact(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Refs lists the references in config, in document order.
func Refs(config []byte) ([]Ref, error) {
	refs, err := scan(config)
	out := make([]Ref, len(refs))
	for i, r := range refs {
		out[i] = r.Ref
	}
	return out, err
}

// Resolve replaces every reference in config with its value, read now from
// the control plane's files and environment. An error names the value's path
// and the file or variable, never a value.
func Resolve(config []byte) (Resolved, error) {
	return resolver{lookupEnv: os.LookupEnv, readFile: readFile}.resolve(config)
}

type resolver struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) (string, error)
}

func (rv resolver) resolve(config []byte) (Resolved, error) {
	refs, err := scan(config)
	if err != nil {
		return Resolved{}, err
	}
	if len(refs) == 0 {
		return Resolved{Config: config}, nil
	}
	var (
		out    bytes.Buffer
		values []string
		errs   []error
		last   int
	)
	for _, r := range refs {
		v, err := rv.value(r.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: $secret %s: %w", r.Path, r.Source, err))
			continue
		}
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			return Resolved{}, fmt.Errorf("%s: $secret %s: %w", r.Path, r.Source, err)
		}
		out.Write(config[last:r.start])
		out.Write(bytes.TrimSuffix(enc.Bytes(), []byte("\n")))
		last = r.end
		values = append(values, v)
	}
	if len(errs) > 0 {
		return Resolved{}, errors.Join(errs...)
	}
	out.Write(config[last:])
	// Longest first, so a value that contains another is replaced whole.
	slices.SortFunc(values, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return Resolved{Config: out.Bytes(), values: slices.Compact(values)}, nil
}

func (rv resolver) value(s Source) (string, error) {
	if s.Env != "" {
		v, ok := rv.lookupEnv(s.Env)
		switch {
		case !ok:
			return "", fmt.Errorf("%w: the variable is not set in the control plane's environment", ErrUnavailable)
		case v == "":
			return "", fmt.Errorf("%w: the variable is empty", ErrUnavailable)
		}
		return v, nil
	}
	v, err := rv.readFile(s.File)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	v = strings.TrimSuffix(v, "\n")
	v = strings.TrimSuffix(v, "\r")
	switch {
	case v == "":
		return "", fmt.Errorf("%w: the file is empty", ErrUnavailable)
	case !utf8.ValidString(v):
		return "", fmt.Errorf("%w: the file is not UTF-8 text", ErrUnavailable)
	}
	return v, nil
}

// readFile reads at most MaxValueBytes; its errors name the file but never
// hold its content.
func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", errors.Unwrap(err) // the *PathError repeats the path
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxValueBytes+1))
	if err != nil {
		return "", errors.Unwrap(err)
	}
	if len(b) > MaxValueBytes {
		return "", fmt.Errorf("the file is larger than %d bytes", MaxValueBytes)
	}
	return string(b), nil
}

// ref is a reference and where its object lies in the configuration.
type ref struct {
	Ref
	start, end int
}

// scan finds the references in src with their byte spans, so that Resolve
// changes nothing else in it.
func scan(src []byte) ([]ref, error) {
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	w := &walker{dec: dec, src: src}
	if err := w.value("config"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the top-level value", ErrSyntax)
	}
	if len(w.refs) > 0 && w.refs[0].Path == "config" {
		return nil, fmt.Errorf("config: %w: the configuration itself cannot be a reference; reference a value inside it", ErrReference)
	}
	return w.refs, nil
}

type walker struct {
	dec  *json.Decoder
	src  []byte
	refs []ref
}

// next is the offset of the next token: the decoder's offset is after the
// last token, before any white space, ':' or ','.
func (w *walker) next() int {
	i := int(w.dec.InputOffset())
	for i < len(w.src) && strings.IndexByte(" \t\r\n:,", w.src[i]) >= 0 {
		i++
	}
	return i
}

func (w *walker) token() (json.Token, error) {
	t, err := w.dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return t, nil
}

func (w *walker) value(path string) error {
	start := w.next()
	t, err := w.token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('['):
		for i := 0; w.dec.More(); i++ {
			if err := w.value(path + "[" + strconv.Itoa(i) + "]"); err != nil {
				return err
			}
		}
		_, err := w.token()
		return err
	case json.Delim('{'):
		return w.object(path, start)
	}
	return nil
}

func (w *walker) object(path string, start int) error {
	for first := true; w.dec.More(); first = false {
		t, err := w.token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if key != Key {
			if err := w.value(member(path, key)); err != nil {
				return err
			}
			continue
		}
		if !first {
			return fmt.Errorf("%s: %w: %q must be the only member of its object", path, ErrReference, Key)
		}
		src, err := w.source(path)
		if err != nil {
			return err
		}
		if w.dec.More() {
			return fmt.Errorf("%s: %w: %q must be the only member of its object", path, ErrReference, Key)
		}
		if _, err := w.token(); err != nil {
			return err
		}
		w.refs = append(w.refs, ref{Ref: Ref{Path: path, Source: src}, start: start, end: int(w.dec.InputOffset())})
		return nil
	}
	_, err := w.token()
	return err
}

// source reads the value of a "$secret" member.
func (w *walker) source(path string) (Source, error) {
	var m map[string]string
	if err := w.dec.Decode(&m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return Source{}, fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		return Source{}, fmt.Errorf("%s: %w", path, ErrReference)
	}
	if len(m) != 1 {
		return Source{}, fmt.Errorf("%s: %w: name exactly one of file or env", path, ErrReference)
	}
	switch {
	case m["file"] != "":
		if !filepath.IsAbs(m["file"]) {
			return Source{}, fmt.Errorf("%s: %w: file %q is not an absolute path", path, ErrReference, m["file"])
		}
		return Source{File: m["file"]}, nil
	case m["env"] != "":
		if strings.ContainsAny(m["env"], "=\x00") {
			return Source{}, fmt.Errorf("%s: %w: env %q is not a variable name", path, ErrReference, m["env"])
		}
		return Source{Env: m["env"]}, nil
	}
	return Source{}, fmt.Errorf("%s: %w", path, ErrReference)
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// member is the path of key inside the object at path.
func member(path, key string) string {
	if plainKey.MatchString(key) {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}
