package authn

import (
	"errors"
	"strings"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/digest"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/sdk"
	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Size limits on credentials: anything longer is refused before it is
// hashed, decoded or parsed.
const (
	MaxAPIKeyBytes = 1 << 10
	MaxTokenBytes  = 16 << 10
)

// Reason says why a request was let through or refused. Reasons are metric
// name suffixes ("allowed_jwt", "denied_expired") and the "reason" of log
// lines, so they are fixed, lower-case words.
type Reason string

// Why a request was allowed.
const (
	AllowedBypass Reason = "bypass"
	AllowedAPIKey Reason = "api_key"
	AllowedJWT    Reason = "jwt"
)

// Why a request was denied.
const (
	DeniedMissing        Reason = "missing_credentials"
	DeniedAPIKey         Reason = "invalid_api_key"
	DeniedTooLarge       Reason = "token_too_large"
	DeniedMalformed      Reason = "malformed_token"
	DeniedAlgNone        Reason = "alg_none"
	DeniedAlgUnsupported Reason = "alg_unsupported"
	DeniedUnknownKey     Reason = "unknown_key"
	DeniedAlgMismatch    Reason = "alg_mismatch"
	DeniedSignature      Reason = "bad_signature"
	DeniedNoExpiry       Reason = "missing_exp"
	DeniedExpired        Reason = "expired"
	DeniedNotYetValid    Reason = "not_yet_valid"
	DeniedIssuer         Reason = "wrong_issuer"
	DeniedAudience       Reason = "wrong_audience"
	DeniedDuplicate      Reason = "duplicate_credentials"
)

// DenyReasons lists every denial reason, so the filter can define one
// counter per reason up front.
var DenyReasons = []Reason{
	DeniedMissing, DeniedAPIKey, DeniedTooLarge, DeniedMalformed, DeniedAlgNone,
	DeniedAlgUnsupported, DeniedUnknownKey, DeniedAlgMismatch, DeniedSignature,
	DeniedNoExpiry, DeniedExpired, DeniedNotYetValid, DeniedIssuer, DeniedAudience,
	DeniedDuplicate,
}

// Error codes of the JSON body ({"error": code}) of a 401.
const (
	CodeMissing      = "missing_credentials"
	CodeInvalidKey   = "invalid_api_key"
	CodeInvalidToken = "invalid_token" // RFC 6750 section 3.1
)

// ErrInvalidAPIKey is the cause of a DeniedAPIKey decision.
var ErrInvalidAPIKey = errors.New("api key not accepted")

// ErrMissing is the cause of a DeniedMissing decision.
var ErrMissing = errors.New("no credentials in the request")

// ErrTooLarge is the cause of a DeniedTooLarge decision.
var ErrTooLarge = errors.New("token longer than 16 KiB")

// ErrDuplicateAPIKey and ErrDuplicateToken are the causes of a
// DeniedDuplicate decision: the request repeats the API key header or the
// token header. Only one copy could be checked while every copy travels
// upstream, where another reader may pick a forged one, so such a request
// is refused whatever the copies hold.
var (
	ErrDuplicateAPIKey = errors.New("api key header repeated")
	ErrDuplicateToken  = errors.New("token header repeated")
)

// Decision is what Check concluded and what the filter must do about it.
type Decision struct {
	Allowed bool
	Reason  Reason
	// Err is the cause of a denial, for the log line.
	Err error
	// Cached is true when the token was found in the cache of verified tokens.
	Cached bool
	// Remove lists request headers to delete before anything else: the
	// headers this filter sets, so clients cannot forge them.
	Remove []string
	// Add lists request headers to set on an allowed request.
	Add [][2]string
	// Path, when not empty, is the ":path" to send upstream: the request's
	// with the API key query parameter removed, so the credential reaches
	// neither the upstream nor its access logs.
	Path string
	// For a denial: the 401's JSON error code and detail, and the
	// WWW-Authenticate challenges (one header each).
	Code       string
	Detail     string
	Challenges []string
}

// Authenticator is the boundary between the filter's proxy-wasm glue and
// its rules: one validated Config, applied to one request at a time or to
// many at once (implementations are safe for concurrent use; a proxy-wasm
// VM calls from one thread, native tests from many).
type Authenticator interface {
	// Check decides on one request. headers are the request headers
	// including ":method" and ":path"; now tells the time to judge exp and
	// nbf by. It is called at most once, and only when the request carries
	// a token: reading the host's clock is a host call, which bypassed and
	// API key requests need not pay for.
	//
	// Every credential the request presents must verify, and at least one
	// must be presented; a request that bypasses needs none. A request
	// that repeats a credential header (the API key header, or the token
	// header whatever scheme its copies use) is refused. Whatever the
	// outcome, Decision.Remove lists the headers the filter owns.
	Check(headers [][2]string, now func() int64) Decision
}

var _ Authenticator = (*authenticator)(nil)

type authenticator struct {
	bypass   bypass
	keys     []apiKey
	keyCfg   APIKeys
	tokenCfg JWT
	verifier *jwt.Verifier
	expect   jwt.Expect
	cache    *tokenCache
	// claims are ForwardClaims as (claim, lower-case header) pairs.
	claims     [][2]string
	remove     []string
	challenges []string
	realm      string
}

type apiKey struct {
	name string
	hash []byte
}

// New builds an Authenticator from cfg, which must have passed Validate
// (New returns Validate's error otherwise).
func New(cfg Config) (Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &authenticator{
		bypass:   newBypass(cfg.Bypass),
		keyCfg:   cfg.APIKeys,
		tokenCfg: cfg.JWT,
		realm:    cfg.Realm,
		expect: jwt.Expect{
			Issuers:   cfg.JWT.Issuers,
			Audiences: cfg.JWT.Audiences,
			Skew:      int64(cfg.JWT.ClockSkewSeconds) * 1e9,
		},
		cache: newTokenCache(cfg.JWT.CacheEntries),
	}
	a.keyCfg.Header = sdk.LowerASCII(a.keyCfg.Header)
	a.keyCfg.NameHeader = sdk.LowerASCII(a.keyCfg.NameHeader)
	a.tokenCfg.Header = sdk.LowerASCII(a.tokenCfg.Header)
	for _, k := range cfg.APIKeys.Keys {
		h, _ := sdk.ParseHex(k.SHA256) // checked by Validate
		a.keys = append(a.keys, apiKey{name: k.Name, hash: h})
	}
	if len(a.keys) > 0 {
		a.challenges = append(a.challenges, `ApiKey realm="`+a.realm+`"`)
		if a.keyCfg.NameHeader != "" {
			a.remove = append(a.remove, a.keyCfg.NameHeader)
		}
	}
	if len(cfg.JWT.JWKS.Keys) > 0 {
		keys := make([]*jwt.Key, 0, len(cfg.JWT.JWKS.Keys))
		for _, j := range cfg.JWT.JWKS.Keys {
			k, _ := jwt.ParseKey(j) // checked by Validate
			keys = append(keys, k)
		}
		a.verifier = jwt.NewVerifier(keys)
		a.challenges = append(a.challenges, `Bearer realm="`+a.realm+`"`)
	}
	for _, fc := range cfg.JWT.ForwardClaims {
		h := sdk.LowerASCII(fc.Header)
		a.claims = append(a.claims, [2]string{fc.Claim, h})
		a.remove = append(a.remove, h)
	}
	return a, nil
}

// Check implements Authenticator.
func (a *authenticator) Check(headers [][2]string, now func() int64) Decision {
	method, _ := sdk.Header(headers, ":method")
	path, _ := sdk.Header(headers, ":path")
	if a.bypass.matches(method, path) {
		return Decision{Allowed: true, Reason: AllowedBypass, Remove: a.remove, Path: a.withoutKey(path)}
	}
	d := Decision{Remove: a.remove}
	if len(a.keys) > 0 && repeated(headers, a.keyCfg.Header) {
		return a.deny(d, ErrDuplicateAPIKey)
	}
	if a.verifier != nil && repeated(headers, a.tokenCfg.Header) {
		return a.deny(d, ErrDuplicateToken)
	}
	presented := false
	if len(a.keys) > 0 {
		if key, ok := a.apiKey(headers, path); ok {
			presented = true
			name, err := a.checkAPIKey(key)
			if err != nil {
				return a.deny(d, err)
			}
			d.Reason = AllowedAPIKey
			if a.keyCfg.NameHeader != "" && name != "" {
				d.Add = append(d.Add, [2]string{a.keyCfg.NameHeader, name})
			}
		}
	}
	if a.verifier != nil {
		if token, ok := a.token(headers); ok {
			presented = true
			add, cached, err := a.checkToken(token, now())
			if err != nil {
				return a.deny(d, err)
			}
			d.Reason, d.Cached = AllowedJWT, cached
			d.Add = append(d.Add, add...)
		}
	}
	if !presented {
		return a.deny(d, ErrMissing)
	}
	d.Allowed, d.Path = true, a.withoutKey(path)
	return d
}

// withoutKey is path without the API key query parameter, or "" when it has
// none (or none is configured): what Decision.Path says.
func (a *authenticator) withoutKey(path string) string {
	if a.keyCfg.QueryParam == "" {
		return ""
	}
	if p, removed := sdk.WithoutQueryParam(path, a.keyCfg.QueryParam); removed {
		return p
	}
	return ""
}

// repeated reports whether the header name (lower case) occurs more than
// once in headers, in any case.
func repeated(headers [][2]string, name string) bool {
	seen := false
	for _, h := range headers {
		if len(h[0]) == len(name) && (h[0] == name || sdk.EqualFoldASCII(h[0], name)) {
			if seen {
				return true
			}
			seen = true
		}
	}
	return false
}

func (a *authenticator) apiKey(headers [][2]string, path string) (string, bool) {
	if v, ok := sdk.Header(headers, a.keyCfg.Header); ok && v != "" {
		return v, true
	}
	if a.keyCfg.QueryParam != "" {
		if v, ok := sdk.QueryParam(path, a.keyCfg.QueryParam); ok && v != "" {
			return v, true
		}
	}
	return "", false
}

// checkAPIKey compares the key's hash with every configured hash in constant
// time, without stopping at a match, so timing tells nothing about which or
// how many keys exist.
func (a *authenticator) checkAPIKey(key string) (name string, err error) {
	if len(key) > MaxAPIKeyBytes {
		return "", ErrInvalidAPIKey
	}
	sum := digest.SumString(key)
	found := false
	for _, k := range a.keys {
		if digest.Equal(sum[:], k.hash) && !found {
			name, found = k.name, true
		}
	}
	if !found {
		return "", ErrInvalidAPIKey
	}
	return name, nil
}

// token returns the bearer token, if the token header carries the prefix.
// A header with another scheme (e.g. Basic) is not a token: it may be meant
// for the upstream.
func (a *authenticator) token(headers [][2]string) (string, bool) {
	v, ok := sdk.Header(headers, a.tokenCfg.Header)
	if !ok || len(v) < len(a.tokenCfg.Prefix) || !sdk.EqualFoldASCII(v[:len(a.tokenCfg.Prefix)], a.tokenCfg.Prefix) {
		return "", false
	}
	token := strings.Trim(v[len(a.tokenCfg.Prefix):], " \t") // RFC 9110 whitespace
	return token, token != ""
}

// checkToken verifies token, through the cache, and returns the headers its
// claims are forwarded in.
func (a *authenticator) checkToken(token string, now int64) (headers [][2]string, cached bool, err error) {
	if len(token) > MaxTokenBytes {
		return nil, false, ErrTooLarge
	}
	if v, expired := a.cache.get(token, now, a.expect.Skew); v != nil {
		return v.headers, true, nil
	} else if expired {
		return nil, true, jwt.ErrExpired
	}
	claims, err := a.verifier.Verify(token)
	if err != nil {
		return nil, false, err
	}
	if err := claims.Validate(now, a.expect); err != nil {
		return nil, false, err
	}
	v := &verified{token: token, expiry: claims.Expiry, headers: a.forward(claims)}
	a.cache.put(v)
	return v.headers, false, nil
}

// forward renders the configured claims as header values: strings as they
// are, numbers and booleans as JSON text, arrays and objects as compact
// JSON. A value that is null, or that would not be a valid header value
// (control characters, non-ASCII), is not forwarded.
func (a *authenticator) forward(c *jwt.Claims) [][2]string {
	var out [][2]string
	for _, ch := range a.claims {
		v := c.All.Field(ch[0])
		if v == nil || v.Kind == jsonv.Null {
			continue
		}
		value := v.Str
		if v.Kind != jsonv.String {
			value = string(v.Bytes())
		}
		if !printable(value) {
			continue
		}
		out = append(out, [2]string{ch[1], value})
	}
	return out
}

// denyReasons maps causes to reasons; the first match wins.
var denyReasons = []struct {
	err    error
	reason Reason
}{
	{ErrMissing, DeniedMissing},
	{ErrInvalidAPIKey, DeniedAPIKey},
	{ErrTooLarge, DeniedTooLarge},
	{ErrDuplicateAPIKey, DeniedDuplicate},
	{ErrDuplicateToken, DeniedDuplicate},
	{jwt.ErrAlgNone, DeniedAlgNone},
	{jwt.ErrAlgUnsupported, DeniedAlgUnsupported},
	{jwt.ErrUnknownKey, DeniedUnknownKey},
	{jwt.ErrAlgMismatch, DeniedAlgMismatch},
	{jwt.ErrSignature, DeniedSignature},
	{jwt.ErrNoExpiry, DeniedNoExpiry},
	{jwt.ErrExpired, DeniedExpired},
	{jwt.ErrNotYetValid, DeniedNotYetValid},
	{jwt.ErrIssuer, DeniedIssuer},
	{jwt.ErrAudience, DeniedAudience},
	{jwt.ErrMalformed, DeniedMalformed},
}

// deny fills in a denial for cause: reason, body code and challenges. Only
// token problems carry error="invalid_token" in the Bearer challenge; a
// request without credentials gets bare challenges (RFC 6750 section 3.1).
func (a *authenticator) deny(d Decision, cause error) Decision {
	d.Allowed, d.Err, d.Add, d.Cached = false, cause, nil, false
	d.Reason = DeniedMalformed
	for _, r := range denyReasons {
		if errors.Is(cause, r.err) {
			d.Reason = r.reason
			break
		}
	}
	d.Detail = string(d.Reason)
	switch {
	case d.Reason == DeniedMissing:
		d.Code = CodeMissing
		d.Challenges = a.challenges
	case d.Reason == DeniedAPIKey, errors.Is(cause, ErrDuplicateAPIKey):
		d.Code = CodeInvalidKey
		d.Challenges = a.challenges
	default:
		d.Code = CodeInvalidToken
		d.Challenges = []string{`Bearer realm="` + a.realm + `", error="invalid_token", error_description="` + string(d.Reason) + `"`}
	}
	return d
}
