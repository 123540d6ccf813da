package main

import (
	"errors"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// DefaultSampleRate logs every request.
const DefaultSampleRate = 1.0

// Config is the logging filter's plugin configuration.
type Config struct {
	// SampleRate is the share of requests logged, 0..1.
	SampleRate float64
	// RequestHeaders and ResponseHeaders are logged as "req.<name>" and
	// "resp.<name>" when present (names are case-insensitive).
	RequestHeaders  []string
	ResponseHeaders []string
	// RedactHeaders are logged as "[redacted]", in addition to the
	// credentials that always are (alwaysRedacted).
	RedactHeaders []string
}

// DefaultConfig logs every request and no extra headers.
func DefaultConfig() Config { return Config{SampleRate: DefaultSampleRate} }

var _ sdk.Decodable = (*Config)(nil)

// DecodeJSON names the configuration's members.
func (c *Config) DecodeJSON(d *sdk.Decoder) {
	d.Float("sample_rate", &c.SampleRate)
	d.Strings("request_headers", &c.RequestHeaders)
	d.Strings("response_headers", &c.ResponseHeaders)
	d.Strings("redact_headers", &c.RedactHeaders)
}

// Validate reports every problem with its field.
func (c Config) Validate() error {
	var errs []error
	if !(c.SampleRate >= 0 && c.SampleRate <= 1) {
		errs = append(errs, sdk.Invalid("sample_rate", sdk.ErrOutOfRange, "must be in 0..1"))
	}
	errs = append(errs, validateNames("request_headers", c.RequestHeaders)...)
	errs = append(errs, validateNames("response_headers", c.ResponseHeaders)...)
	errs = append(errs, validateNames("redact_headers", c.RedactHeaders)...)
	return errors.Join(errs...)
}

func validateNames(field string, names []string) []error {
	var errs []error
	seen := map[string]bool{}
	for i, name := range names {
		lower := sdk.LowerASCII(name)
		switch {
		case !sdk.ValidHeaderName(name):
			errs = append(errs, sdk.Invalid(sdk.Index(field, i), sdk.ErrInvalid, "not an HTTP header name"))
		case seen[lower]:
			errs = append(errs, sdk.Invalid(sdk.Index(field, i), sdk.ErrDuplicate, name))
		}
		seen[lower] = true
	}
	return errs
}
