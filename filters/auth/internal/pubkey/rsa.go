package pubkey

import (
	"bytes"
	"errors"
)

// Limits on RSA keys. RFC 7518 section 3.3 requires at least 2048 bits; the
// upper bound caps the work an untrusted token can cause per key.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// Why NewRSA refuses a key, by the part at fault.
var (
	ErrRSAModulus  = errors.New("modulus must be odd and 2048 to 8192 bits")
	ErrRSAExponent = errors.New("exponent must be odd, >= 3 and < 2^31")
)

// RSA is an RSA public key ready to verify RSASSA-PKCS1-v1_5 SHA-256
// signatures. It is immutable and safe for concurrent use.
type RSA struct {
	mod  *modulus
	e    []byte // big-endian, no leading zeros
	size int    // modulus length in bytes: every signature has exactly this length
}

// NewRSA prepares the key with big-endian modulus n and exponent e. The
// modulus must be odd and 2048 to 8192 bits; the exponent odd, >= 3 and
// below 2^31 (what crypto/rsa accepts too).
func NewRSA(n, e []byte) (*RSA, error) {
	n = bytes.TrimLeft(n, "\x00")
	e = bytes.TrimLeft(e, "\x00")
	if bits := bitLen(n); bits < MinRSABits || bits > MaxRSABits {
		return nil, ErrRSAModulus
	}
	if len(e) == 0 || len(e) > 4 || len(e) == 4 && e[0] >= 0x80 || e[len(e)-1]&1 == 0 || len(e) == 1 && e[0] < 3 {
		return nil, ErrRSAExponent
	}
	mod := newModulus(n)
	if mod == nil {
		return nil, ErrRSAModulus
	}
	return &RSA{mod: mod, e: e, size: len(n)}, nil
}

// bitLen is the length in bits of big-endian b without leading zero bytes.
func bitLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	n := 8 * len(b)
	for top := b[0]; top&0x80 == 0; top <<= 1 {
		n--
	}
	return n
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017
// section 9.2, note 1).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// VerifySHA256 reports whether sig is k's RSASSA-PKCS1-v1_5 signature of
// the SHA-256 digest (RFC 8017 section 8.2.2). The expected encoded message
// is built and compared whole, never parsed, so no padding trick passes.
func (k *RSA) VerifySHA256(digest, sig []byte) bool {
	if len(sig) != k.size || len(digest) != 32 {
		return false
	}
	s, ok := k.mod.parse(sig)
	if !ok {
		return false
	}
	t := k.mod.scratch()
	x := make(nat, len(s))
	k.mod.toMont(x, s, t)
	m := make(nat, len(s))
	k.mod.exp(m, x, k.e, t)
	k.mod.fromMont(m, m, t)

	// EM = 0x00 0x01 0xff... 0x00 DigestInfo digest
	want := make([]byte, k.size)
	want[1] = 1
	tail := len(want) - len(sha256DigestInfo) - len(digest)
	for i := 2; i < tail-1; i++ {
		want[i] = 0xff
	}
	copy(want[tail:], sha256DigestInfo)
	copy(want[tail+len(sha256DigestInfo):], digest)
	return bytes.Equal(m.bytes(k.size), want)
}
