package sdk

import (
	"errors"
	"strconv"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Config is what a filter's configuration type implements. Validate has a
// value receiver so that the sdk can decode into a plain C; it returns every
// problem joined (errors.Join), each wrapped with Invalid so that the field it
// concerns ends up in the logs.
type Config interface {
	Validate() error
}

// Sentinels a Validate method wraps (through Invalid) so callers and tests can
// use errors.Is. ErrSyntax and ErrUnknownField come from DecodeConfig itself.
var (
	ErrSyntax       = errors.New("not a valid JSON object")
	ErrUnknownField = errors.New("unknown field")
	ErrWrongType    = errors.New("wrong type")
	ErrRequired     = errors.New("required")
	ErrInvalid      = errors.New("invalid value")
	ErrOutOfRange   = errors.New("out of range")
	ErrDuplicate    = errors.New("duplicate")
)

// FieldError is one configuration problem: which field (a dotted path such
// as "request.headers.add[0].name"), which sentinel, and optional detail.
type FieldError struct {
	Field  string
	Err    error
	Detail string
}

// Invalid returns a *FieldError; use it in Validate so every problem names
// its field: errs = append(errs, sdk.Invalid("sample_rate", sdk.ErrOutOfRange, "must be in 0..1")).
func Invalid(field string, err error, detail string) error {
	return &FieldError{Field: field, Err: err, Detail: detail}
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

// Index builds the field path of a list element, e.g. Index("rules", 2) is
// "rules[2]", without fmt.
func Index(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// Decodable is implemented by a configuration's pointer type: DecodeJSON
// names each field and where it goes, so decoding needs neither reflection
// nor encoding/json (together ~1 MB of a 2.5 MB module budget). Add
// `var _ sdk.Decodable = (*Config)(nil)` beside your type to have the
// compiler check it.
type Decodable interface {
	DecodeJSON(d *Decoder)
}

// ErrNotDecodable is returned when *C does not implement Decodable.
var ErrNotDecodable = errors.New("configuration type has no DecodeJSON(*sdk.Decoder) method")

// DecodeConfig turns plugin configuration bytes into a validated C. Empty
// input (no configuration at all) means the defaults. Decoding is strict:
// unknown fields, wrong types and anything but one JSON object are errors
// naming the field (a dotted path such as "request.headers.add[0].name"),
// and every problem is reported, not just the first; then C.Validate runs.
// def supplies the defaults the JSON is decoded over (a fresh value per call:
// decoding writes into it); nil means the zero C. *C must implement Decodable.
func DecodeConfig[C Config](data []byte, def func() C) (C, error) {
	var cfg C
	if def != nil {
		cfg = def()
	}
	target, _ := any(&cfg).(Decodable)
	if err := decodeInto(data, target); err != nil {
		var zero C
		return zero, err
	}
	if err := cfg.Validate(); err != nil {
		var zero C
		return zero, err
	}
	return cfg, nil
}

// decodeInto is DecodeConfig's non-generic part (generic code is copied
// per configuration type, and module size matters).
func decodeInto(data []byte, target Decodable) error {
	if target == nil {
		return Invalid("(root)", ErrNotDecodable, "")
	}
	if blank(data) {
		return nil
	}
	v, err := jsonv.Parse(data)
	if err != nil {
		return Invalid("(root)", ErrSyntax, err.Error())
	}
	if v.Kind != jsonv.Object {
		return Invalid("(root)", ErrSyntax, "configuration must be a JSON object, not "+v.Kind.String())
	}
	var errs []error
	decodeObject(&v, "", &errs, target.DecodeJSON)
	return errors.Join(errs...)
}

// Problems flattens err (a joined error from DecodeConfig or Validate) into
// its individual problems, each a *FieldError where the filter used Invalid.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// blank reports whether data is only JSON whitespace (bytes.TrimSpace would
// bring Unicode tables into the module).
func blank(data []byte) bool {
	for _, c := range data {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
