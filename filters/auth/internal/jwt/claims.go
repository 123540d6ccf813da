package jwt

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Claims are a verified token's registered claims (RFC 7519 section 4.1)
// plus every member, for forwarding selected ones upstream.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// Expiry and NotBefore are zero when the claim is absent.
	Expiry    time.Time
	NotBefore time.Time
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
	// Skew is the clock difference tolerated on exp and nbf.
	Skew time.Duration
}

// Validate checks exp (required), nbf, iss and aud at time now. A token is
// refused from its exp on (RFC 7519 section 4.1.4: "on or after"), plus
// skew.
func (c *Claims) Validate(now time.Time, want Expect) error {
	if c.Expiry.IsZero() {
		return ErrNoExpiry
	}
	if !now.Before(c.Expiry.Add(want.Skew)) {
		return ErrExpired
	}
	if !c.NotBefore.IsZero() && now.Add(want.Skew).Before(c.NotBefore) {
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
			return jsonv.Value{}, wrap(segment, wrap("duplicate member "+strconv.Quote(m.Key), ErrMalformed))
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

// maxNumericDate bounds exp/nbf so the conversion to time.Time cannot
// overflow (year ~36812; anything later is as good as never).
const maxNumericDate = 1 << 40

// numericDate decodes seconds since the epoch, possibly fractional
// (RFC 7519 section 2).
func numericDate(obj *jsonv.Value, name string) (time.Time, error) {
	v := obj.Field(name)
	if v == nil {
		return time.Time{}, nil
	}
	secs, err := strconv.ParseFloat(v.Str, 64)
	if v.Kind != jsonv.Number || (err != nil && !isRangeErr(err)) || !(secs > 0) {
		return time.Time{}, wrap(name, wrap("want a positive NumericDate", ErrMalformed))
	}
	secs = math.Min(secs, maxNumericDate)
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)), nil
}

// isRangeErr reports a number too large for float64 ("1e400"): still a valid
// JSON number, and ParseFloat returns +Inf with it, which the clamp handles.
func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
