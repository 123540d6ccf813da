package jwt

import (
	"math"
	"slices"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Claims are a verified token's registered claims (RFC 7519 section 4.1)
// plus every member, for forwarding selected ones upstream.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// Expiry and NotBefore are Unix nanoseconds, zero when the claim is
	// absent. Not time.Time: in a wasm module its methods link about 0.1 MB
	// of formatting and time zone code.
	Expiry    int64
	NotBefore int64
	// All holds every claim as it appeared in the payload (a JSON object
	// without duplicate names).
	All jsonv.Value
}

// Expect is what Validate checks claims against.
type Expect struct {
	// Issuers, when not empty, must contain iss.
	Issuers []string
	// Audiences, when not empty, must share a value with aud.
	Audiences []string
	// Skew is the clock difference tolerated on exp and nbf, in nanoseconds.
	Skew int64
}

// Validate checks exp (required), nbf, iss and aud at now (Unix
// nanoseconds). A token is refused from its exp on (RFC 7519 section 4.1.4:
// "on or after"), plus skew.
func (c *Claims) Validate(now int64, want Expect) error {
	if c.Expiry == 0 {
		return ErrNoExpiry
	}
	if !Before(now, c.Expiry, want.Skew) {
		return ErrExpired
	}
	if c.NotBefore != 0 && now+want.Skew < c.NotBefore {
		return ErrNotYetValid
	}
	if len(want.Issuers) > 0 && !slices.Contains(want.Issuers, c.Issuer) {
		return ErrIssuer
	}
	if len(want.Audiences) > 0 && !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(want.Audiences, a) }) {
		return ErrAudience
	}
	return nil
}

// parseObject parses a header or payload: a JSON object whose member names
// are unique. RFC 7515 section 4 and RFC 7519 section 4 allow either
// refusing duplicates or taking the last; refusing leaves no room for two
// parsers (ours and the upstream's) to read different claims.
func parseObject(segment string, raw []byte) (jsonv.Value, error) {
	v, err := jsonv.Parse(raw)
	if err != nil || v.Kind != jsonv.Object {
		return jsonv.Value{}, wrap(segment, wrap("not a JSON object", ErrMalformed))
	}
	seen := make(map[string]struct{}, len(v.Members))
	for _, m := range v.Members {
		if _, dup := seen[m.Key]; dup {
			return jsonv.Value{}, wrap(segment, wrap("duplicate member "+quote(m.Key), ErrMalformed))
		}
		seen[m.Key] = struct{}{}
	}
	return v, nil
}

// parseClaims decodes a verified payload. Registered claims of the wrong type
// make the token malformed rather than being ignored.
func parseClaims(payload []byte) (*Claims, error) {
	all, err := parseObject("payload", payload)
	if err != nil {
		return nil, err
	}
	c := &Claims{All: all}
	if c.Issuer, err = stringMember(&all, "iss"); err != nil {
		return nil, err
	}
	if c.Subject, err = stringMember(&all, "sub"); err != nil {
		return nil, err
	}
	if c.Audience, err = audience(&all); err != nil {
		return nil, err
	}
	if c.Expiry, err = numericDate(&all, "exp"); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate(&all, "nbf"); err != nil {
		return nil, err
	}
	return c, nil
}

// stringMember returns member name of obj, which must be a string if present.
func stringMember(obj *jsonv.Value, name string) (string, error) {
	v := obj.Field(name)
	if v == nil {
		return "", nil
	}
	if v.Kind != jsonv.String {
		return "", wrap(name, wrap("want a string", ErrMalformed))
	}
	return v.Str, nil
}

// audience accepts a string or an array of strings (RFC 7519 section 4.1.3).
func audience(obj *jsonv.Value) ([]string, error) {
	v := obj.Field("aud")
	switch {
	case v == nil:
		return nil, nil
	case v.Kind == jsonv.String:
		return []string{v.Str}, nil
	case v.Kind == jsonv.Array:
		out := make([]string, 0, len(v.Items))
		for _, item := range v.Items {
			if item.Kind != jsonv.String {
				return nil, wrap("aud", wrap("want a string or an array of strings", ErrMalformed))
			}
			out = append(out, item.Str)
		}
		return out, nil
	}
	return nil, wrap("aud", wrap("want a string or an array of strings", ErrMalformed))
}

// Before reports whether now is before expiry plus skew (all Unix
// nanoseconds): whether a token with that exp is still good.
func Before(now, expiry, skew int64) bool { return now < expiry+skew }

// maxNumericDate caps exp and nbf, in seconds (year 2255), so that the
// nanoseconds and a skew added to them cannot overflow; anything later is as
// good as never.
const maxNumericDate = 9e9

// numericDate decodes seconds since the epoch, possibly fractional (RFC 7519
// section 2: a JSON number), into Unix nanoseconds. Zero and negative
// numbers are refused; a number too large for a float64 counts as never.
func numericDate(obj *jsonv.Value, name string) (int64, error) {
	v := obj.Field(name)
	if v == nil {
		return 0, nil
	}
	secs, _ := v.Float() // +Inf past float64's range: clamped below
	if !(secs > 0) {
		return 0, wrap(name, wrap("want a positive NumericDate", ErrMalformed))
	}
	secs = min(secs, maxNumericDate)
	whole := math.Floor(secs)
	return int64(whole)*1e9 + int64((secs-whole)*1e9), nil
}
