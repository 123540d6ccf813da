package authn_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/authn"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwttest"
	"github.com/wasmfleet/wasmfleet/sdk"
)

// keyHash is the configured form of the test API key "k-alice".
const keyHash = "8fab151ebfe45da0ce0c2a951f8bba063f8668389b08a793acf59f301a6dbd57"

func jwksJSON(t testing.TB, keys ...jwt.JWK) string {
	t.Helper()
	b, err := json.Marshal(jwt.JWKS{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigValidate(t *testing.T) {
	keys, _ := jwttest.Shared(t)
	jwks := jwksJSON(t, keys.JWKs()...)
	rs := keys.RSJWK()
	rs.Alg = "HS256"
	badAlg := jwksJSON(t, rs)
	dupKid := jwksJSON(t, keys.HSJWK(), keys.HSJWK())
	apiKeys := `"api_keys":{"keys":[{"name":"alice","sha256":"` + keyHash + `"}]}`

	tests := []struct {
		name   string
		config string
		// fields that must be named, in any order; none means valid.
		fields []string
		is     error
	}{
		{name: "api keys only", config: `{` + apiKeys + `}`},
		{name: "jwt only", config: `{"jwt":{"jwks":` + jwks + `}}`},
		{name: "everything", config: `{"realm":"api","bypass":{"path_prefixes":["/public/","/healthz"],"methods":["OPTIONS"]},` + apiKeys +
			`,"jwt":{"issuers":["https://i"],"audiences":["api"],"clock_skew_seconds":0,"cache_entries":0,"jwks":` + jwks + `,"forward_claims":[{"claim":"sub","header":"x-user"},{"claim":"email","header":"x-email"}]}}`},
		{name: "empty config: no credentials", config: ``, fields: []string{"api_keys.keys"}, is: sdk.ErrRequired},
		{name: "empty lists: no credentials", config: `{"api_keys":{"keys":[]},"jwt":{"jwks":{"keys":[]}}}`, fields: []string{"api_keys.keys"}, is: sdk.ErrRequired},
		{name: "unknown field", config: `{"api_key":{}}`, fields: []string{"api_key"}, is: sdk.ErrUnknownField},
		{name: "wrong type", config: `{"jwt":{"clock_skew_seconds":"60"}}`, fields: []string{"jwt.clock_skew_seconds"}, is: sdk.ErrWrongType},
		{name: "plain key instead of hash", config: `{"api_keys":{"keys":[{"name":"a","sha256":"k-alice"}]}}`, fields: []string{"api_keys.keys[0].sha256"}, is: sdk.ErrInvalid},
		{name: "duplicate key hash", config: `{"api_keys":{"keys":[{"sha256":"` + keyHash + `"},{"sha256":"` + strings.ToUpper(keyHash) + `"}]}}`, fields: []string{"api_keys.keys[1].sha256"}, is: sdk.ErrDuplicate},
		{name: "key name with newline", config: `{"api_keys":{"keys":[{"name":"a\nb","sha256":"` + keyHash + `"}]}}`, fields: []string{"api_keys.keys[0].name"}, is: sdk.ErrInvalid},
		{name: "empty api key header", config: `{"api_keys":{"header":"","keys":[{"sha256":"` + keyHash + `"}]}}`, fields: []string{"api_keys.header"}, is: sdk.ErrRequired},
		{name: "pseudo-header as api key header", config: `{"api_keys":{"header":":path","keys":[{"sha256":"` + keyHash + `"}]}}`, fields: []string{"api_keys.header"}, is: sdk.ErrInvalid},
		{name: "host as name header", config: `{"api_keys":{"name_header":"Host","keys":[{"sha256":"` + keyHash + `"}]}}`, fields: []string{"api_keys.name_header"}, is: sdk.ErrInvalid},
		{name: "jwk alg does not fit kty", config: `{"jwt":{"jwks":` + badAlg + `}}`, fields: []string{"jwt.jwks.keys[0].alg"}, is: sdk.ErrInvalid},
		{name: "duplicate kid", config: `{"jwt":{"jwks":` + dupKid + `}}`, fields: []string{"jwt.jwks.keys[1].kid"}, is: sdk.ErrDuplicate},
		{name: "skew out of range", config: `{"jwt":{"clock_skew_seconds":7200,"jwks":` + jwks + `}}`, fields: []string{"jwt.clock_skew_seconds"}, is: sdk.ErrOutOfRange},
		{name: "negative cache size", config: `{"jwt":{"cache_entries":-1,"jwks":` + jwks + `}}`, fields: []string{"jwt.cache_entries"}, is: sdk.ErrOutOfRange},
		{name: "claim header clashes with token header", config: `{"jwt":{"jwks":` + jwks + `,"forward_claims":[{"claim":"sub","header":"Authorization"}]}}`, fields: []string{"jwt.forward_claims[0].header"}, is: sdk.ErrInvalid},
		{name: "claim header not a header name", config: `{"jwt":{"jwks":` + jwks + `,"forward_claims":[{"claim":"sub","header":"x user"}]}}`, fields: []string{"jwt.forward_claims[0].header"}, is: sdk.ErrInvalid},
		{name: "two claims into one header", config: `{"jwt":{"jwks":` + jwks + `,"forward_claims":[{"claim":"sub","header":"x-u"},{"claim":"email","header":"X-U"}]}}`, fields: []string{"jwt.forward_claims[1].header"}, is: sdk.ErrDuplicate},
		{name: "forwarded claim without a name", config: `{"jwt":{"jwks":` + jwks + `,"forward_claims":[{"header":"x-u"}]}}`, fields: []string{"jwt.forward_claims[0].claim"}, is: sdk.ErrRequired},
		{name: "private JWK member refused", config: `{"jwt":{"jwks":{"keys":[{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","d":"x"}]}}}`, fields: []string{"jwt.jwks.keys[0].d"}, is: sdk.ErrUnknownField},
		{name: "unknown nested field", config: `{"bypass":{"prefixes":["/x"]},` + apiKeys + `}`, fields: []string{"bypass.prefixes"}, is: sdk.ErrUnknownField},
		{name: "bypass prefix without slash", config: `{"bypass":{"path_prefixes":["public"]},` + apiKeys + `}`, fields: []string{"bypass.path_prefixes[0]"}, is: sdk.ErrInvalid},
		{name: "bypass prefix with dot segment", config: `{"bypass":{"path_prefixes":["/public/../admin"]},` + apiKeys + `}`, fields: []string{"bypass.path_prefixes[0]"}, is: sdk.ErrInvalid},
		{name: "lower-case bypass method", config: `{"bypass":{"methods":["options"]},` + apiKeys + `}`, fields: []string{"bypass.methods[0]"}, is: sdk.ErrInvalid},
		{name: "realm with a quote", config: `{"realm":"a\"b",` + apiKeys + `}`, fields: []string{"realm"}, is: sdk.ErrInvalid},
		{name: "several problems at once", config: `{"realm":"","api_keys":{"keys":[{"sha256":"zz"}]},"jwt":{"clock_skew_seconds":-1,"jwks":` + jwks + `}}`,
			fields: []string{"realm", "api_keys.keys[0].sha256", "jwt.clock_skew_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdk.DecodeConfig([]byte(tt.config), authn.Default)
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("DecodeConfig: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("DecodeConfig accepted the configuration")
			}
			var named []string
			for _, p := range sdk.Problems(err) {
				var fe *sdk.FieldError
				if errors.As(p, &fe) {
					named = append(named, fe.Field)
				}
			}
			for _, f := range tt.fields {
				if !slices.Contains(named, f) {
					t.Errorf("field %q not named; problems: %v", f, err)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
}

// FuzzConfig decodes arbitrary plugin configurations: no panics, and a
// configuration that validates must build an Authenticator.
func FuzzConfig(f *testing.F) {
	keys, _ := jwttest.Shared(f)
	f.Add([]byte(`{"api_keys":{"keys":[{"name":"alice","sha256":"` + keyHash + `"}]}}`))
	f.Add([]byte(`{"bypass":{"path_prefixes":["/"]},"jwt":{"jwks":` + jwksJSON(f, keys.JWKs()...) + `,"forward_claims":[{"claim":"sub","header":"x-sub"}]}}`))
	f.Add([]byte(`{"jwt":{"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := sdk.DecodeConfig(data, authn.Default)
		if err != nil {
			return
		}
		if _, err := authn.New(cfg); err != nil {
			t.Fatalf("New refused a validated configuration: %v", err)
		}
	})
}
