// Package digest is SHA-256 and HMAC-SHA256 for the auth filter's guest.
//
// Why not crypto/sha256 and crypto/hmac: in a GOOS=wasip1 module the
// standard packages bring the FIPS 140 module with them (self-tests, DRBG,
// AES, SHA-3, SHA-512 and more), about 0.9 MB of a filter whose budget is
// 2.5 MB with the Go runtime alone at 1.8 MB. The algorithm itself is a page
// of code. Tests check it against the standard library, FIPS 180-4's
// examples and every Wycheproof HMAC-SHA256 vector (testdata/wycheproof),
// natively and compiled to wasip1 under wazero.
package digest
