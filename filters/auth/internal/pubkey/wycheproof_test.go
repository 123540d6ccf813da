package pubkey

import (
	"bytes"
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/digest"
	"github.com/wasmfleet/wasmfleet/filters/auth/internal/wycheproof"
)

// TestWycheproof runs every ECDSA P-256 and RSASSA-PKCS1-v1_5 (2048, 3072
// and 4096 bits) SHA-256 vector of C2SP Wycheproof (testdata/wycheproof,
// Apache License 2.0) through the filter's own path: digest.Sum256 of the
// message, then VerifySHA256. A valid signature must verify and an invalid
// one must not; "acceptable" ones may go either way. A key that NewRSA or
// NewP256 refuses verifies nothing, so its group must hold no valid
// signature. DER-encoded ECDSA signatures are converted to r||s by a strict
// DER reader here (the filter itself only sees JWS's r||s).
// TestWycheproofCompiled runs this test again compiled to wasip1.
func TestWycheproof(t *testing.T) {
	type vector struct {
		TcID    int            `json:"tcId"`
		Comment string         `json:"comment"`
		Msg     wycheproof.Hex `json:"msg"`
		Sig     wycheproof.Hex `json:"sig"`
		Result  string         `json:"result"`
	}
	type file struct {
		NumberOfTests int `json:"numberOfTests"`
		TestGroups    []struct {
			PublicKey struct {
				WX       wycheproof.Hex `json:"wx"` // ECDSA
				WY       wycheproof.Hex `json:"wy"`
				Modulus  wycheproof.Hex `json:"modulus"` // RSA
				Exponent wycheproof.Hex `json:"publicExponent"`
			} `json:"publicKey"`
			Tests []vector `json:"tests"`
		} `json:"testGroups"`
	}
	files := []struct {
		name string
		key  func(x, y []byte) (verifier, error)
		sig  func([]byte) []byte
	}{
		{"ecdsa_secp256r1_sha256_p1363_test.json", p256Key, nil},
		{"ecdsa_secp256r1_sha256_test.json", p256Key, derToP1363},
		{"rsa_signature_2048_sha256_test.json", rsaKey, nil},
		{"rsa_signature_3072_sha256_test.json", rsaKey, nil},
		{"rsa_signature_4096_sha256_test.json", rsaKey, nil},
	}
	total := 0
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			var fl file
			wycheproof.Read(t, "testdata/wycheproof/"+f.name, &fl)
			counts := map[string]int{}
			for _, g := range fl.TestGroups {
				pk := g.PublicKey
				x, y := pk.WX, pk.WY
				if pk.Modulus != nil {
					x, y = pk.Modulus, pk.Exponent
				}
				key, keyErr := f.key(x, y)
				for _, tc := range g.Tests {
					counts[tc.Result]++
					got := false
					if keyErr == nil {
						sig := []byte(tc.Sig)
						if f.sig != nil {
							sig = f.sig(sig)
						}
						sum := digest.Sum256(tc.Msg)
						got = sig != nil && key.VerifySHA256(sum[:], sig)
					}
					if tc.Result == "valid" && !got || tc.Result == "invalid" && got {
						t.Errorf("tcId %d (%s): verified %v, want %s (key error: %v)", tc.TcID, tc.Comment, got, tc.Result, keyErr)
					}
				}
			}
			n := counts["valid"] + counts["invalid"] + counts["acceptable"]
			if n != fl.NumberOfTests || n == 0 {
				t.Fatalf("ran %d vectors, the file says %d", n, fl.NumberOfTests)
			}
			total += n
			t.Logf("%d vectors: %d valid, %d invalid, %d acceptable", n, counts["valid"], counts["invalid"], counts["acceptable"])
		})
	}
	t.Logf("%d signature vectors", total)
}

// verifier is what *RSA and *P256 have in common.
type verifier interface{ VerifySHA256(digest, sig []byte) bool }

func p256Key(x, y []byte) (verifier, error) { return NewP256(fixed32(x), fixed32(y)) }

func rsaKey(n, e []byte) (verifier, error) { return NewRSA(n, e) }

// fixed32 is a Wycheproof coordinate (big-endian, with a leading zero byte
// when its top bit is set) as the 32 bytes JWK's "x" and "y" carry, or
// unchanged when it does not fit.
func fixed32(b []byte) []byte {
	b = bytes.TrimLeft(b, "\x00")
	if len(b) > 32 {
		return b
	}
	return append(make([]byte, 32-len(b)), b...)
}

// derToP1363 reads a DER ECDSA-Sig-Value, SEQUENCE { r INTEGER, s INTEGER }
// (SEC 1, appendix C.8), as r||s of 32 bytes each, or nil when it is not
// strict DER (long or indefinite lengths where short ones fit, padded or
// negative integers, trailing bytes) or r or s does not fit in 32 bytes.
func derToP1363(der []byte) []byte {
	seq, rest, ok := derElement(der, 0x30)
	if !ok || len(rest) != 0 {
		return nil
	}
	r, seq, okr := derElement(seq, 0x02)
	s, seq, oks := derElement(seq, 0x02)
	if !okr || !oks || len(seq) != 0 {
		return nil
	}
	out := make([]byte, 0, 64)
	for _, v := range [][]byte{r, s} {
		switch {
		case len(v) == 0, v[0]&0x80 != 0: // empty or negative
			return nil
		case len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0: // not minimal
			return nil
		}
		v = bytes.TrimLeft(v, "\x00")
		if len(v) > 32 {
			return nil
		}
		out = append(append(out, make([]byte, 32-len(v))...), v...)
	}
	return out
}

// derElement reads one DER element with the given one-byte tag from b and
// returns its contents and what follows it.
func derElement(b []byte, tag byte) (contents, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, nil, false
	}
	n, b := int(b[1]), b[2:]
	if n >= 0x80 {
		size := n & 0x7f
		if size == 0 || size > 2 || len(b) < size || b[0] == 0 { // indefinite, huge or padded
			return nil, nil, false
		}
		n = 0
		for _, c := range b[:size] {
			n = n<<8 | int(c)
		}
		if n < 0x80 { // the short form was required
			return nil, nil, false
		}
		b = b[size:]
	}
	if len(b) < n {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}
