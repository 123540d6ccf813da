// Package pubkey verifies RS256 and ES256 signatures (RSASSA-PKCS1-v1_5 and
// ECDSA over P-256, both with SHA-256) for the auth filter's guest.
//
// Why not crypto/rsa and crypto/ecdsa: compiled for GOOS=wasip1 they bring
// the FIPS 140 module, math/big and encoding/asn1, about 1.4 MB, into a
// filter whose budget is 2.5 MB with the Go runtime alone at 1.8 MB. What
// verification needs is small: Montgomery multiplication over an odd
// modulus, and for P-256 the complete addition formula of Renes, Costello
// and Batina (eprint 2015/1060, algorithm 4 for a = -3), which needs no
// special cases for doubling or the point at infinity.
//
// Everything here works on public values only (keys, signatures, digests),
// so the arithmetic is variable-time by design and must not be used for
// signing or with secrets. Tests check it against crypto/rsa and
// crypto/ecdsa, and run every Wycheproof ECDSA P-256 and RSASSA-PKCS1-v1_5
// SHA-256 vector (testdata/wycheproof) natively and compiled to wasip1
// under wazero.
package pubkey
