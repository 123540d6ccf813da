package jwt

import (
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

// maxNumericDate caps exp and nbf, in nanoseconds (year 2255), so that adding
// a skew cannot overflow; anything later is as good as never.
const maxNumericDate = 9e18

// numericDate decodes seconds since the epoch, possibly fractional or with
// an exponent (RFC 7519 section 2: a JSON number), into Unix nanoseconds.
func numericDate(obj *jsonv.Value, name string) (int64, error) {
	v := obj.Field(name)
	if v == nil {
		return 0, nil
	}
	nanos, ok := int64(0), false
	if v.Kind == jsonv.Number {
		nanos, ok = secondsToNanos(v.Str)
	}
	if !ok {
		return 0, wrap(name, wrap("want a positive NumericDate", ErrMalformed))
	}
	return nanos, nil
}

// secondsToNanos turns a JSON number of seconds into nanoseconds,
// truncating below a nanosecond and saturating at maxNumericDate. Zero and
// negative numbers are refused. It does the decimal arithmetic itself
// rather than through strconv.ParseFloat, which would link ~30 KB of
// float parsing into the module, and is exact where a float64 is not.
func secondsToNanos(s string) (int64, bool) {
	if s == "" || s[0] == '-' {
		return 0, false
	}
	// s = digits x 10^exp10, digits without leading zeros.
	var digits []byte
	exp10 := 0
	i := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		if len(digits) > 0 || s[i] != '0' {
			digits = append(digits, s[i])
		}
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			if len(digits) > 0 || s[i] != '0' {
				digits = append(digits, s[i])
			}
			exp10--
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := i < len(s) && s[i] == '-'
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		e := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			e = min(e*10+int(s[i]-'0'), 1000) // beyond 1000 the answer no longer changes
		}
		if neg {
			e = -e
		}
		exp10 += e
	}
	if i != len(s) || len(digits) == 0 {
		return 0, false // not a number, or zero
	}
	shift := exp10 + 9 // nanoseconds = digits x 10^shift
	if len(digits)+shift > 19 {
		return maxNumericDate, true // at least 10^19 ns
	}
	if shift < 0 {
		digits = digits[:max(len(digits)+shift, 0)]
		shift = 0
	}
	var n uint64 // below 10^19: fits
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	for range shift {
		n *= 10
	}
	return max(int64(min(n, maxNumericDate)), 1), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
