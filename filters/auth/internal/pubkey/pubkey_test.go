package pubkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"testing"
)

// TestMontgomeryMatchesBigInt checks mul, add, sub and exp against math/big
// for random moduli of several sizes.
func TestMontgomeryMatchesBigInt(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for _, size := range []int{1, 4, 32, 33, 256} {
		for range 20 {
			mb := randBytes(r, size)
			mb[len(mb)-1] |= 1
			mb[0] |= 0x80
			if size == 1 && mb[0] < 3 {
				continue
			}
			mod := newModulus(mb)
			m := new(big.Int).SetBytes(mb)
			a := new(big.Int).Mod(new(big.Int).SetBytes(randBytes(r, size)), m)
			b := new(big.Int).Mod(new(big.Int).SetBytes(randBytes(r, size)), m)
			an, _ := mod.parse(a.Bytes())
			bn, _ := mod.parse(b.Bytes())
			check := func(op string, got nat, want *big.Int) {
				t.Helper()
				if g := new(big.Int).SetBytes(got.bytes(size)); g.Cmp(want) != 0 {
					t.Fatalf("%d-byte modulus %x: %s = %x, want %x", size, mb, op, g, want)
				}
			}
			tmp, z := mod.scratch(), make(nat, len(mod.m))
			mod.add(z, an, bn)
			check("a+b", z, new(big.Int).Mod(new(big.Int).Add(a, b), m))
			mod.sub(z, an, bn)
			check("a-b", z, new(big.Int).Mod(new(big.Int).Sub(a, b), m))
			am, bm := make(nat, len(z)), make(nat, len(z))
			mod.toMont(am, an, tmp)
			mod.toMont(bm, bn, tmp)
			mod.mul(z, am, bm, tmp)
			mod.fromMont(z, z, tmp)
			check("a*b", z, new(big.Int).Mod(new(big.Int).Mul(a, b), m))
			e := randBytes(r, 1+r.IntN(8))
			mod.exp(z, am, e, tmp)
			mod.fromMont(z, z, tmp)
			check("a^e", z, new(big.Int).Exp(a, new(big.Int).SetBytes(e), m))
		}
	}
}

func TestNewModulusRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    []byte
	}{{"even", []byte{1, 0}}, {"zero", []byte{0, 0}}, {"one", []byte{1}}, {"empty", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			if newModulus(tt.m) != nil {
				t.Fatalf("newModulus(%x) accepted", tt.m)
			}
		})
	}
}

func TestRSAVerify(t *testing.T) {
	for _, bits := range []int{2048, 3072, 4096} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		key, err := NewRSA(priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if key.size != priv.Size() {
			t.Fatalf("size %d, want %d", key.size, priv.Size())
		}
		digest := sha256.Sum256([]byte("signing input"))
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if !key.VerifySHA256(digest[:], sig) {
			t.Fatalf("%d bits: a valid signature did not verify", bits)
		}
		other := sha256.Sum256([]byte("other input"))
		sha1Sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA1, digest[:20])
		if err != nil {
			t.Fatal(err)
		}
		nPlus := new(big.Int).Add(priv.N, big.NewInt(5)).Bytes()
		bad := []struct {
			name        string
			digest, sig []byte
		}{
			{"other digest", other[:], sig},
			{"flipped bit", digest[:], flip(sig, 17)},
			{"last bit", digest[:], flip(sig, len(sig)*8-1)},
			{"short", digest[:], sig[1:]},
			{"long", digest[:], append([]byte{0}, sig...)},
			{"signature >= modulus", digest[:], nPlus},
			{"zero", digest[:], make([]byte, len(sig))},
			{"SHA-1 encoding", digest[:], sha1Sig},
			{"short digest", digest[:20], sig},
		}
		for _, b := range bad {
			if key.VerifySHA256(b.digest, b.sig) {
				t.Errorf("%d bits, %s: verified", bits, b.name)
			}
		}
	}
}

func TestNewRSARefuses(t *testing.T) {
	priv1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	n2048 := append([]byte{0x80}, make([]byte, 255)...)
	n2048[255] = 1
	even := append([]byte(nil), n2048...)
	even[255] = 2
	tests := []struct {
		name string
		n, e []byte
		want error
	}{
		{"1024 bits", priv1024.N.Bytes(), []byte{1, 0, 1}, ErrRSAModulus},
		{"too long", append([]byte{1}, make([]byte, 1024)...), []byte{1, 0, 1}, ErrRSAModulus},
		{"even modulus", even, []byte{1, 0, 1}, ErrRSAModulus},
		{"even exponent", n2048, []byte{1, 0, 0}, ErrRSAExponent},
		{"exponent 1", n2048, []byte{1}, ErrRSAExponent},
		{"no exponent", n2048, nil, ErrRSAExponent},
		{"exponent 2^31+1", n2048, []byte{0x80, 0, 0, 1}, ErrRSAExponent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRSA(tt.n, tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Leading zero bytes are not part of the size.
	if k, err := NewRSA(append([]byte{0, 0}, n2048...), []byte{0, 1, 0, 1}); err != nil || k.size != 256 {
		t.Fatalf("padded 2048-bit key: %v, %v", k, err)
	}
}

func TestP256Verify(t *testing.T) {
	for i := range 20 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := NewP256(priv.X.FillBytes(make([]byte, 32)), priv.Y.FillBytes(make([]byte, 32)))
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte{byte(i)})
		if i == 0 {
			// A digest above n exercises the reduction.
			for j := range digest {
				digest[j] = 0xff
			}
		}
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		if !key.VerifySHA256(digest[:], sig) {
			t.Fatalf("key %d: a valid signature did not verify", i)
		}
		n := elliptic.P256().Params().N
		negS := new(big.Int).Sub(n, s) // (r, n-s) is also valid ECDSA
		bad := []struct {
			name        string
			digest, sig []byte
		}{
			{"other digest", flip(digest[:], 3), sig},
			{"r flipped", digest[:], flip(sig, 100)},
			{"s flipped", digest[:], flip(sig, 300)},
			{"r zero", digest[:], append(make([]byte, 32), sig[32:]...)},
			{"s zero", digest[:], append(append([]byte(nil), sig[:32]...), make([]byte, 32)...)},
			{"r = r+n", digest[:], append(new(big.Int).Add(r, n).FillBytes(make([]byte, 33))[1:], sig[32:]...)},
			{"s >= n", digest[:], append(append([]byte(nil), sig[:32]...), n.Bytes()...)},
			{"short", digest[:], sig[:63]},
		}
		if new(big.Int).Add(r, n).BitLen() > 256 {
			bad = bad[:5] // r+n does not fit 32 bytes: nothing to test
		}
		for _, b := range bad {
			if key.VerifySHA256(b.digest, b.sig) {
				t.Errorf("key %d, %s: verified", i, b.name)
			}
		}
		malleable := append(append([]byte(nil), sig[:32]...), negS.FillBytes(make([]byte, 32))...)
		if !key.VerifySHA256(digest[:], malleable) {
			t.Errorf("key %d: (r, n-s) did not verify, as ECDSA says it does", i)
		}
	}
}

// TestDoubleScalarMult checks the point arithmetic against crypto/elliptic,
// including the doubling and infinity cases the complete formula covers.
func TestDoubleScalarMult(t *testing.T) {
	params := elliptic.P256().Params()
	r := mrand.New(mrand.NewPCG(5, 6))
	qx, qy := elliptic.P256().ScalarBaseMult([]byte{7})
	key, err := NewP256(qx.FillBytes(make([]byte, 32)), qy.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	nMinus7 := new(big.Int).Sub(params.N, big.NewInt(7)).Bytes()
	cases := [][2][]byte{
		{{1}, {0}},
		{{0}, {1}},
		{{7}, {1}},     // G*7 + Q with Q = 7G: a doubling inside an addition
		{nMinus7, {1}}, // -7G + 7G: infinity
		{{0}, {0}},     // infinity
		{randBytes(r, 32), randBytes(r, 32)},
	}
	for _, c := range cases {
		u1 := natFromBytes(c[0], p256Limbs)
		u2 := natFromBytes(c[1], p256Limbs)
		tmp := curve.p.scratch()
		got := curve.doubleScalarMult(u1, u2, key.q, tmp)
		x1, y1 := elliptic.P256().ScalarBaseMult(c[0])
		x2, y2 := elliptic.P256().ScalarMult(qx, qy, c[1])
		wx, wy := elliptic.P256().Add(x1, y1, x2, y2)
		if wx.Sign() == 0 && wy.Sign() == 0 {
			if !got.z.isZero() {
				t.Fatalf("u1=%x u2=%x: want infinity", c[0], c[1])
			}
			continue
		}
		zinv, gx, gy := make(nat, p256Limbs), make(nat, p256Limbs), make(nat, p256Limbs)
		curve.p.exp(zinv, got.z, minusTwo(p256P.bytes(32)), tmp)
		curve.p.mul(gx, got.x, zinv, tmp)
		curve.p.mul(gy, got.y, zinv, tmp)
		curve.p.fromMont(gx, gx, tmp)
		curve.p.fromMont(gy, gy, tmp)
		if new(big.Int).SetBytes(gx.bytes(32)).Cmp(wx) != 0 || new(big.Int).SetBytes(gy.bytes(32)).Cmp(wy) != 0 {
			t.Fatalf("u1=%x u2=%x: got (%x, %x), want (%x, %x)", c[0], c[1], gx.bytes(32), gy.bytes(32), wx, wy)
		}
	}
}

func TestNewP256Refuses(t *testing.T) {
	gx, gy := p256Gx.bytes(32), p256Gy.bytes(32)
	tests := []struct {
		name string
		x, y []byte
	}{
		{"off the curve", gx, flip(gy, 255)},
		{"x = p", p256P.bytes(32), gy},
		{"short x", gx[1:], gy},
		{"origin", make([]byte, 32), make([]byte, 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewP256(tt.x, tt.y); !errors.Is(err, ErrP256Point) {
				t.Fatalf("err = %v, want ErrP256Point", err)
			}
		})
	}
	if _, err := NewP256(gx, gy); err != nil {
		t.Fatalf("the base point: %v", err)
	}
}

func FuzzP256Verify(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key, err := NewP256(priv.X.FillBytes(make([]byte, 32)), priv.Y.FillBytes(make([]byte, 32)))
	if err != nil {
		f.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	r, s, _ := ecdsa.Sign(rand.Reader, priv, digest[:])
	f.Add(digest[:], append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
	f.Add(digest[:], make([]byte, 64))
	f.Fuzz(func(t *testing.T, digest, sig []byte) {
		got := key.VerifySHA256(digest, sig)
		want := len(digest) == 32 && len(sig) == 64 && ecdsa.Verify(&priv.PublicKey, digest,
			new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		if got != want {
			t.Fatalf("VerifySHA256 = %v, crypto/ecdsa says %v", got, want)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	digest := sha256.Sum256([]byte("signing input"))
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	rsaKey, _ := NewRSA(rsaPriv.N.Bytes(), big.NewInt(int64(rsaPriv.E)).Bytes())
	rsaSig, _ := rsa.SignPKCS1v15(rand.Reader, rsaPriv, crypto.SHA256, digest[:])
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecKey, _ := NewP256(ecPriv.X.FillBytes(make([]byte, 32)), ecPriv.Y.FillBytes(make([]byte, 32)))
	r, s, _ := ecdsa.Sign(rand.Reader, ecPriv, digest[:])
	ecSig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	b.Run("RS256", func(b *testing.B) {
		for b.Loop() {
			if !rsaKey.VerifySHA256(digest[:], rsaSig) {
				b.Fatal("did not verify")
			}
		}
	})
	b.Run("ES256", func(b *testing.B) {
		for b.Loop() {
			if !ecKey.VerifySHA256(digest[:], ecSig) {
				b.Fatal("did not verify")
			}
		}
	})
}

func randBytes(r *mrand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// flip is a copy of b with bit i (from the first byte's top bit) flipped.
func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i/8] ^= 0x80 >> (i % 8)
	return out
}

func BenchmarkMontMul(b *testing.B) {
	for _, m := range []*modulus{curve.p, newModulus(append([]byte{0xc5}, make([]byte, 255)...)[:256:256])} {
		if m == nil {
			continue
		}
		x := append(nat(nil), m.one...)
		t := m.scratch()
		b.Run(strconv.Itoa(64*len(m.m)), func(b *testing.B) {
			for b.Loop() {
				m.mul(x, x, x, t)
			}
		})
	}
}

// TestP256FieldMul checks the field's shortcut reduction against math/big,
// including values next to p where every carry is taken.
func TestP256FieldMul(t *testing.T) {
	p := new(big.Int).SetBytes(p256P.bytes(32))
	r := mrand.New(mrand.NewPCG(7, 8))
	pMinus := func(k int64) *big.Int { return new(big.Int).Sub(p, big.NewInt(k)) }
	values := []*big.Int{big.NewInt(0), big.NewInt(1), pMinus(1), pMinus(2), new(big.Int).Lsh(big.NewInt(1), 255), new(big.Int).Lsh(big.NewInt(1), 64)}
	for range 200 {
		values = append(values, new(big.Int).Mod(new(big.Int).SetBytes(randBytes(r, 32)), p))
	}
	rInv := new(big.Int).ModInverse(new(big.Int).Lsh(big.NewInt(1), 256), p)
	tmp := curve.p.scratch()
	for i, a := range values {
		b := values[(i*7+3)%len(values)]
		an := natFromBytes(a.Bytes(), p256Limbs)
		bn := natFromBytes(b.Bytes(), p256Limbs)
		z := make(nat, p256Limbs)
		curve.p.mul(z, an, bn, tmp)
		want := new(big.Int).Mul(a, b)
		want.Mul(want, rInv).Mod(want, p)
		if got := new(big.Int).SetBytes(z.bytes(32)); got.Cmp(want) != 0 {
			t.Fatalf("%x * %x / R = %x, want %x", a, b, got, want)
		}
	}
}

// TestP256XAboveN covers the rare branch where the sum's x is at least n,
// so r = x - n and the check must compare against (r+n)*Z. Random signing
// never gets there (p - n is about 2^128), so the key is built for it: Q is
// a point whose x is in [n, p), and with digest 0 and r = s = x - n,
// u1 = 0 and u2 = 1, so the sum is Q itself.
func TestP256XAboveN(t *testing.T) {
	curveParams := elliptic.P256().Params()
	p, n, b := curveParams.P, curveParams.N, curveParams.B
	three := big.NewInt(3)
	x := new(big.Int).Set(n)
	var y *big.Int
	for ; x.Cmp(p) < 0; x.Add(x, big.NewInt(1)) {
		rhs := new(big.Int).Exp(x, three, p)
		rhs.Sub(rhs, new(big.Int).Mul(three, x)).Add(rhs, b).Mod(rhs, p)
		if y = new(big.Int).ModSqrt(rhs, p); y != nil {
			break
		}
	}
	if y == nil {
		t.Fatal("no point with x in [n, p)")
	}
	key, err := NewP256(x.FillBytes(make([]byte, 32)), y.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	r := new(big.Int).Sub(x, n).FillBytes(make([]byte, 32))
	digest := make([]byte, 32)
	sig := append(append([]byte(nil), r...), r...)
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	if !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(r), new(big.Int).SetBytes(r)) {
		t.Fatal("crypto/ecdsa refuses the constructed signature: the construction is wrong")
	}
	if !key.VerifySHA256(digest, sig) {
		t.Fatal("a valid signature whose x is above n did not verify")
	}
	if key.VerifySHA256(digest, flip(sig, 255)) {
		t.Fatal("r+1 verified")
	}
}
