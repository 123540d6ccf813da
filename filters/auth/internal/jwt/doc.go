// Package jwt verifies JSON Web Tokens (RFC 7519) in JWS compact
// serialization (RFC 7515) against keys from an inline JWK Set (RFC 7517).
//
// It exists because the auth filter runs inside Envoy as a wasip1 module:
// third-party JWT libraries pull in fmt and crypto/x509 (which imports os) and
// add size, and they accept more than a gateway should. This package accepts
// exactly three algorithms, HS256, RS256 and ES256 (RFC 7518 section 3), ties
// every key to one of them so that a key can never be used with another
// algorithm (the "RS256 public key as HS256 secret" confusion), refuses
// "alg":"none" and unknown critical header parameters, and decodes the
// payload only after the signature has been checked. The cryptography is in
// the sibling packages digest (SHA-256, HMAC) and pubkey (RSA and P-256
// verification): the standard library's crypto packages would add 2 MB to
// the module. Tests sign with the standard library and verify with these.
//
// Nothing here reads a clock: callers pass the time to Claims.Validate, so
// tests control it and the filter uses the host's clock.
package jwt
