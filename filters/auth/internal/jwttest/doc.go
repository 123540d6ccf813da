// Package jwttest makes keys and signs tokens for the auth filter's tests, so
// that no test depends on checked-in secrets: every key is generated with
// crypto/rand when a test binary first asks for it. It signs with the
// standard library, independently of package jwt's verification code, and
// can also produce tokens no honest issuer would (alg "none", a header of
// the caller's choosing, a signature made with the wrong key).
package jwttest
