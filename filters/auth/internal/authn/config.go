package authn

import (
	"errors"
	"strings"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/digest"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/sdk"
)

// Defaults and limits of the configuration.
const (
	DefaultRealm            = "wasmfleet"
	DefaultAPIKeyHeader     = "x-api-key"
	DefaultTokenHeader      = "authorization"
	DefaultTokenPrefix      = "Bearer "
	DefaultClockSkewSeconds = 60
	DefaultCacheEntries     = 1024
	MaxClockSkewSeconds     = 3600
	MaxCacheEntries         = 1 << 20
)

// Config is the auth filter's plugin configuration. Its JSON member names
// (snake_case, e.g. "api_keys.query_param") are listed in DecodeJSON; the
// filter's package doc shows a complete example. At least one API key or
// one JWT key must be configured: a filter that lets everything through by
// accident is worse than one that refuses to start.
type Config struct {
	// Realm goes into WWW-Authenticate challenges.
	Realm   string
	Bypass  Bypass
	APIKeys APIKeys
	JWT     JWT
}

// Bypass lists requests that need no credentials.
type Bypass struct {
	// PathPrefixes match whole path segments: "/public" and "/public/" both
	// match "/public" and "/public/x" but never "/publicity". A path with
	// dot segments, "//", a backslash or an encoded '.', '/' or '\' never
	// bypasses (Envoy does not normalise paths by default, and an upstream
	// might resolve "/public/../admin" to "/admin").
	PathPrefixes []string
	// Methods, e.g. ["OPTIONS"] for CORS preflights, in upper case.
	Methods []string
}

// APIKeys configures API key authentication; it is on when Keys is not empty.
type APIKeys struct {
	// Header carries the key.
	Header string
	// QueryParam, when set, is consulted if the header is absent.
	QueryParam string
	// NameHeader, when set, is set upstream to the matched key's name.
	NameHeader string
	Keys       []APIKey
}

// APIKey is one accepted key, stored as the hex SHA-256 of the key so that
// configuration (and everything it is copied into: xDS, logs, the store)
// never holds a usable secret.
type APIKey struct {
	Name   string
	SHA256 string
}

// JWT configures bearer token authentication; it is on when JWKS has keys.
type JWT struct {
	// Header and Prefix locate the token: by default "authorization:
	// Bearer <token>". The prefix is matched without regard to case.
	Header string
	Prefix string
	// Issuers and Audiences, when not empty, must contain the token's iss
	// and one of its aud values.
	Issuers   []string
	Audiences []string
	// ClockSkewSeconds is tolerated on exp and nbf.
	ClockSkewSeconds int
	// JWKS holds the verification keys inline.
	JWKS jwt.JWKS
	// ForwardClaims lists claims whose values are forwarded as request
	// headers. Incoming copies of these headers are always removed.
	ForwardClaims []ForwardClaim
	// CacheEntries bounds the cache of verified tokens; 0 turns it off.
	CacheEntries int
}

// ForwardClaim forwards one claim's value upstream in Header.
type ForwardClaim struct {
	Claim  string
	Header string
}

// Default is the configuration a plugin's JSON is decoded over.
func Default() Config {
	return Config{
		Realm:   DefaultRealm,
		APIKeys: APIKeys{Header: DefaultAPIKeyHeader},
		JWT: JWT{
			Header:           DefaultTokenHeader,
			Prefix:           DefaultTokenPrefix,
			ClockSkewSeconds: DefaultClockSkewSeconds,
			CacheEntries:     DefaultCacheEntries,
		},
	}
}

var _ sdk.Decodable = (*Config)(nil)

// DecodeJSON names the configuration's members for sdk.DecodeConfig.
func (c *Config) DecodeJSON(d *sdk.Decoder) {
	d.String("realm", &c.Realm)
	d.Object("bypass", func(d *sdk.Decoder) {
		d.Strings("path_prefixes", &c.Bypass.PathPrefixes)
		d.Strings("methods", &c.Bypass.Methods)
	})
	d.Object("api_keys", func(d *sdk.Decoder) {
		k := &c.APIKeys
		d.String("header", &k.Header)
		d.String("query_param", &k.QueryParam)
		d.String("name_header", &k.NameHeader)
		sdk.List(d, "keys", &k.Keys, func(d *sdk.Decoder, key *APIKey) {
			d.String("name", &key.Name)
			d.String("sha256", &key.SHA256)
		})
	})
	d.Object("jwt", func(d *sdk.Decoder) {
		j := &c.JWT
		d.String("header", &j.Header)
		d.String("prefix", &j.Prefix)
		d.Strings("issuers", &j.Issuers)
		d.Strings("audiences", &j.Audiences)
		d.Int("clock_skew_seconds", &j.ClockSkewSeconds)
		d.Int("cache_entries", &j.CacheEntries)
		d.Object("jwks", func(d *sdk.Decoder) {
			sdk.List(d, "keys", &j.JWKS.Keys, decodeJWK)
		})
		sdk.List(d, "forward_claims", &j.ForwardClaims, func(d *sdk.Decoder, fc *ForwardClaim) {
			d.String("claim", &fc.Claim)
			d.String("header", &fc.Header)
		})
	})
}

// decodeJWK reads the JWK members package jwt uses. Other registered members
// (x5c, key_ops, ...) are refused as unknown rather than silently ignored;
// a private member ("d", "p", ...) is refused too, so a private key pasted
// by mistake stops the configuration instead of sitting in it.
func decodeJWK(d *sdk.Decoder, j *jwt.JWK) {
	for _, m := range []struct {
		name string
		dst  *string
	}{
		{"kty", &j.Kty}, {"kid", &j.Kid}, {"alg", &j.Alg}, {"use", &j.Use},
		{"k", &j.K}, {"n", &j.N}, {"e", &j.E}, {"crv", &j.Crv}, {"x", &j.X}, {"y", &j.Y},
	} {
		d.String(m.name, m.dst)
	}
}

// ErrNoCredentials is the problem of a configuration with neither API keys
// nor JWT keys.
var ErrNoCredentials = errors.New("no API keys and no JWT keys: configure api_keys.keys or jwt.jwks.keys")

// Validate lists every problem, each naming its field (see sdk.Invalid).
func (c Config) Validate() error {
	var errs []error
	add := func(field string, err error, detail string) { errs = append(errs, sdk.Invalid(field, err, detail)) }

	if c.Realm == "" {
		add("realm", sdk.ErrRequired, "")
	} else if !quotable(c.Realm) {
		add("realm", sdk.ErrInvalid, `must be printable ASCII without '"' or '\'`)
	}
	for i, p := range c.Bypass.PathPrefixes {
		if !strings.HasPrefix(p, "/") || !cleanPath(p) {
			add(sdk.Index("bypass.path_prefixes", i), sdk.ErrInvalid, `must start with "/" and have no dot segments, "//" or encoded separators`)
		}
	}
	for i, m := range c.Bypass.Methods {
		if !isToken(m) || strings.ContainsFunc(m, isLowerASCII) {
			add(sdk.Index("bypass.methods", i), sdk.ErrInvalid, "must be an upper-case HTTP method")
		}
	}

	credHeaders := map[string]string{}
	if len(c.APIKeys.Keys) > 0 {
		checkHeader(add, "api_keys.header", c.APIKeys.Header, true)
		credHeaders[sdk.LowerASCII(c.APIKeys.Header)] = "api_keys.header"
		if c.APIKeys.NameHeader != "" {
			checkHeader(add, "api_keys.name_header", c.APIKeys.NameHeader, false)
		}
		seen := map[string]int{}
		for i, k := range c.APIKeys.Keys {
			field := sdk.Index("api_keys.keys", i)
			if b, ok := sdk.ParseHex(k.SHA256); !ok || len(b) != digest.Size {
				add(field+".sha256", sdk.ErrInvalid, "must be 64 hex characters (the SHA-256 of the key, never the key)")
			} else if j, dup := seen[sdk.LowerASCII(k.SHA256)]; dup {
				add(field+".sha256", sdk.ErrDuplicate, "same as "+sdk.Index("api_keys.keys", j))
			} else {
				seen[sdk.LowerASCII(k.SHA256)] = i
			}
			if !printable(k.Name) {
				add(field+".name", sdk.ErrInvalid, "must be printable ASCII (it may be forwarded as a header)")
			}
		}
	}
	if len(c.JWT.JWKS.Keys) > 0 {
		checkHeader(add, "jwt.header", c.JWT.Header, true)
		credHeaders[sdk.LowerASCII(c.JWT.Header)] = "jwt.header"
		if !printable(c.JWT.Prefix) {
			add("jwt.prefix", sdk.ErrInvalid, "must be printable ASCII")
		}
		if c.JWT.ClockSkewSeconds < 0 || c.JWT.ClockSkewSeconds > MaxClockSkewSeconds {
			add("jwt.clock_skew_seconds", sdk.ErrOutOfRange, "must be in 0..3600")
		}
		if c.JWT.CacheEntries < 0 || c.JWT.CacheEntries > MaxCacheEntries {
			add("jwt.cache_entries", sdk.ErrOutOfRange, "must be in 0..1048576")
		}
		kids := map[string]int{}
		for i, j := range c.JWT.JWKS.Keys {
			field := sdk.Index("jwt.jwks.keys", i)
			if _, err := jwt.ParseKey(j); err != nil {
				if ke, ok := err.(*jwt.KeyError); ok {
					add(field+"."+ke.Member, sdk.ErrInvalid, ke.Problem)
				} else {
					add(field, sdk.ErrInvalid, err.Error())
				}
			}
			if j.Kid == "" {
				continue
			}
			if first, dup := kids[j.Kid]; dup {
				add(field+".kid", sdk.ErrDuplicate, "same as "+sdk.Index("jwt.jwks.keys", first))
			}
			kids[j.Kid] = i
		}
	}
	if len(c.APIKeys.Keys) == 0 && len(c.JWT.JWKS.Keys) == 0 {
		add("api_keys.keys", sdk.ErrRequired, ErrNoCredentials.Error())
	}
	forwarded := map[string]int{}
	for i, fc := range c.JWT.ForwardClaims {
		field := sdk.Index("jwt.forward_claims", i)
		if fc.Claim == "" {
			add(field+".claim", sdk.ErrRequired, "")
		}
		checkHeader(add, field+".header", fc.Header, true)
		h := sdk.LowerASCII(fc.Header)
		if owner, clash := credHeaders[h]; clash {
			add(field+".header", sdk.ErrInvalid, "same header as "+owner+": it would be stripped")
		}
		if first, dup := forwarded[h]; dup {
			add(field+".header", sdk.ErrDuplicate, "same as "+sdk.Index("jwt.forward_claims", first))
		}
		forwarded[h] = i
	}
	if h := sdk.LowerASCII(c.APIKeys.NameHeader); h != "" {
		if owner, clash := credHeaders[h]; clash {
			add("api_keys.name_header", sdk.ErrInvalid, "same header as "+owner+": it would be stripped")
		}
	}
	return errors.Join(errs...)
}

// checkHeader refuses names that are not HTTP tokens, pseudo-headers and
// headers a filter must not rewrite.
func checkHeader(add func(string, error, string), field, name string, required bool) {
	switch {
	case name == "" && required:
		add(field, sdk.ErrRequired, "")
	case !isToken(name):
		add(field, sdk.ErrInvalid, "must be an HTTP header name")
	case reservedHeaders[sdk.LowerASCII(name)]:
		add(field, sdk.ErrInvalid, "reserved header")
	}
}

var reservedHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"te": true, "upgrade": true, "content-type": true,
}

func isLowerASCII(r rune) bool { return 'a' <= r && r <= 'z' }

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// printable reports whether s is printable ASCII (a safe header value).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// quotable reports whether s can sit inside a quoted-string unescaped.
func quotable(s string) bool {
	return printable(s) && !strings.ContainsAny(s, `"\`)
}
