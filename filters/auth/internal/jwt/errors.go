package jwt

import (
	"errors"

	"github.com/wasmfleet/wasmfleet/sdk/jsonv"
)

// Sentinel errors, for errors.Is. Every error this package returns wraps one
// of them, so a caller can count denials by reason.
var (
	// ErrMalformed: the token is not three base64url segments of JSON, or a
	// member has the wrong type.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgNone: the token is unsecured ("alg":"none"); never accepted.
	ErrAlgNone = errors.New(`"alg":"none" is not accepted`)
	// ErrAlgUnsupported: the token's alg is not HS256, RS256 or ES256.
	ErrAlgUnsupported = errors.New("unsupported alg")
	// ErrUnknownKey: no configured key has the token's kid, or the token has
	// no kid and not exactly one key fits its alg.
	ErrUnknownKey = errors.New("no matching key")
	// ErrAlgMismatch: the key named by kid is for another algorithm.
	ErrAlgMismatch = errors.New("alg does not match the key")
	// ErrSignature: the signature does not verify (or has the wrong length).
	ErrSignature = errors.New("invalid signature")
	// ErrNoExpiry: the token has no exp claim; tokens must expire.
	ErrNoExpiry = errors.New("missing exp claim")
	// ErrExpired: exp is in the past (beyond the allowed clock skew).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf is in the future (beyond the allowed clock skew).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrIssuer: iss is not one of the accepted issuers.
	ErrIssuer = errors.New("issuer not accepted")
	// ErrAudience: no aud value is one of the accepted audiences.
	ErrAudience = errors.New("audience not accepted")
	// ErrBadKey: a JWK cannot be used (wrong kty/alg/crv, bad encoding, too
	// short); ParseKey's *KeyError wraps it.
	ErrBadKey = errors.New("unusable key")
)

// subjectError names what a sentinel is about, subject first
// (`kid "a": no matching key`), without fmt: the filter avoids fmt.
type subjectError struct {
	subject string
	err     error
}

func (e *subjectError) Error() string { return e.subject + ": " + e.err.Error() }
func (e *subjectError) Unwrap() error { return e.err }

func wrap(subject string, err error) error { return &subjectError{subject: subject, err: err} }

// quote is s in double quotes for an error message, escaped as JSON escapes
// it (strconv.Quote would link strconv's Unicode tables into the module).
func quote(s string) string { return string(jsonv.AppendString(nil, s)) }
