package pubkey

import (
	"errors"
	"math/bits"
)

// ErrP256Point is why NewP256 refused a key.
var ErrP256Point = errors.New("(x, y) is not a point on P-256")

// P-256's domain parameters (FIPS 186-5 / SEC 2) as little-endian 64-bit
// limbs: the prime p = 2^256 - 2^224 + 2^192 + 2^96 - 1, the group order n,
// the curve's b and the base point G.
var (
	p256P  = nat{0xffffffffffffffff, 0x00000000ffffffff, 0x0000000000000000, 0xffffffff00000001}
	p256N  = nat{0xf3b9cac2fc632551, 0xbce6faada7179e84, 0xffffffffffffffff, 0xffffffff00000000}
	p256B  = nat{0x3bce3c3e27d2604b, 0x651d06b0cc53b0f6, 0xb3ebbd55769886bc, 0x5ac635d8aa3a93e7}
	p256Gx = nat{0xf4a13945d898c296, 0x77037d812deb33a0, 0xf8bce6e563a440f2, 0x6b17d1f2e12c4247}
	p256Gy = nat{0xcbb6406837bf51f5, 0x2bce33576b315ece, 0x8ee7eb4a7c0f9e16, 0x4fe342e2fe1a7f9b}
)

// p256Limbs is the length of P-256 field and scalar elements.
const p256Limbs = 4

// curve is P-256 prepared once: the field and group moduli, b and the base
// point in the field's Montgomery domain, and the exponent that inverts a
// scalar by Fermat's little theorem (x^-1 = x^(n-2) for prime n).
var curve = newCurve()

type p256 struct {
	p, n         *modulus
	b            nat
	g            point
	nMinus2      []byte
	threeMontOne nat // 3 in the Montgomery domain
}

// point is a projective point (X:Y:Z), coordinates in the Montgomery
// domain; (0:1:0) is the point at infinity.
type point struct{ x, y, z nat }

func newCurve() *p256 {
	c := &p256{p: newModulus(p256P.bytes(32)), n: newModulus(p256N.bytes(32))}
	c.p.p256 = true
	t := c.p.scratch()
	c.b = c.toField(p256B, t)
	c.g = c.affine(p256Gx, p256Gy, t)
	c.nMinus2 = minusTwo(p256N.bytes(32))
	c.threeMontOne = make(nat, p256Limbs)
	c.p.add(c.threeMontOne, c.p.one, c.p.one)
	c.p.add(c.threeMontOne, c.threeMontOne, c.p.one)
	return c
}

// minusTwo is q-2 for an odd q whose last byte is at least 2.
func minusTwo(q []byte) []byte {
	out := append([]byte(nil), q...)
	out[len(out)-1] -= 2
	return out
}

func (c *p256) toField(x, t nat) nat {
	z := make(nat, p256Limbs)
	c.p.toMont(z, x, t)
	return z
}

func (c *p256) affine(x, y, t nat) point {
	return point{x: c.toField(x, t), y: c.toField(y, t), z: append(nat(nil), c.p.one...)}
}

func (c *p256) infinity() point {
	return point{x: make(nat, p256Limbs), y: append(nat(nil), c.p.one...), z: make(nat, p256Limbs)}
}

// P256 is a P-256 public key ready to verify ECDSA SHA-256 signatures. It is
// immutable and safe for concurrent use.
type P256 struct{ q point }

// NewP256 checks that the 32-byte big-endian coordinates (x, y) are a point
// on P-256 (an invalid-curve point would leak nothing here, since nothing
// is secret, but it could make forged signatures verify) and prepares it.
func NewP256(x, y []byte) (*P256, error) {
	if len(x) != 32 || len(y) != 32 {
		return nil, ErrP256Point
	}
	xn, okx := curve.p.parse(x)
	yn, oky := curve.p.parse(y)
	if !okx || !oky {
		return nil, ErrP256Point
	}
	t := curve.p.scratch()
	q := curve.affine(xn, yn, t)
	// y^2 == x^3 - 3x + b
	lhs, rhs, u := make(nat, p256Limbs), make(nat, p256Limbs), make(nat, p256Limbs)
	curve.p.mul(lhs, q.y, q.y, t)
	curve.p.mul(rhs, q.x, q.x, t)
	curve.p.mul(rhs, rhs, q.x, t)
	curve.p.mul(u, q.x, curve.threeMontOne, t)
	curve.p.sub(rhs, rhs, u)
	curve.p.add(rhs, rhs, curve.b)
	if less(lhs, rhs) || less(rhs, lhs) {
		return nil, ErrP256Point
	}
	return &P256{q: q}, nil
}

// VerifySHA256 reports whether r||s (32 bytes each, big-endian, as JWS
// ES256 encodes them) is k's ECDSA signature of the SHA-256 digest
// (SEC 1 section 4.1.4).
func (k *P256) VerifySHA256(digest, sig []byte) bool {
	if len(sig) != 64 || len(digest) != 32 {
		return false
	}
	c := curve
	r, okr := c.n.parse(sig[:32])
	s, oks := c.n.parse(sig[32:])
	if !okr || !oks || r.isZero() || s.isZero() {
		return false
	}
	// The digest is 256 bits, as n is: e = digest mod n, one subtraction.
	e := natFromBytes(digest, p256Limbs)
	if !less(e, c.n.m) {
		c.n.subM(e)
	}
	t := c.n.scratch()
	// w = s^-1; u1 = e*w, u2 = r*w (mul by w in the Montgomery domain
	// leaves the products in the ordinary one).
	sm, w := make(nat, p256Limbs), make(nat, p256Limbs)
	c.n.toMont(sm, s, t)
	c.n.exp(w, sm, c.nMinus2, t)
	u1, u2 := make(nat, p256Limbs), make(nat, p256Limbs)
	c.n.mul(u1, e, w, t)
	c.n.mul(u2, r, w, t)

	sum := c.doubleScalarMult(u1, u2, k.q, t)
	if sum.z.isZero() {
		return false
	}
	// The sum's affine x is X/Z, and the signature holds when x mod n == r:
	// when X == r*Z, or X == (r+n)*Z if r+n is still below p. Comparing
	// products saves inverting Z (about 380 multiplications).
	cand, rz := append(nat(nil), r...), make(nat, p256Limbs)
	for {
		c.p.toMont(rz, cand, t)
		c.p.mul(rz, rz, sum.z, t)
		if !less(rz, sum.x) && !less(sum.x, rz) {
			return true
		}
		var carry uint64
		for i, ni := range c.n.m {
			cand[i], carry = bits.Add64(cand[i], ni, carry)
		}
		if carry != 0 || !less(cand, c.p.m) {
			return false
		}
	}
}

// doubleScalarMult is u1*G + u2*q, both scalars at once (Shamir's trick):
// one doubling per bit and at most one addition of G, q or G+q.
func (c *p256) doubleScalarMult(u1, u2 nat, q point, t nat) point {
	w := newWork()
	table := [4]point{c.infinity(), c.g, q, c.infinity()}
	c.add(&table[3], &c.g, &q, w, t)
	acc := c.infinity()
	for i := 255; i >= 0; i-- {
		c.add(&acc, &acc, &acc, w, t)
		sel := u1[i/64]>>(i%64)&1 | (u2[i/64]>>(i%64)&1)<<1
		if sel != 0 {
			c.add(&acc, &acc, &table[sel], w, t)
		}
	}
	return acc
}

// work is add's temporaries, allocated once per scalar multiplication.
type work struct{ t0, t1, t2, t3, t4, x3, y3, z3 nat }

func newWork() *work {
	const n = p256Limbs
	l := make(nat, 8*n)
	return &work{l[0:n], l[n : 2*n], l[2*n : 3*n], l[3*n : 4*n], l[4*n : 5*n], l[5*n : 6*n], l[6*n : 7*n], l[7*n : 8*n]}
}

// add is out = a + b with the complete projective formula for a = -3
// (Renes-Costello-Batina algorithm 4): correct for a == b and for the point
// at infinity, so callers need no special cases. out may alias a or b.
func (c *p256) add(out, a, b *point, w *work, t nat) {
	f := c.p
	t0, t1, t2, t3, t4, x3, y3, z3 := w.t0, w.t1, w.t2, w.t3, w.t4, w.x3, w.y3, w.z3
	f.mul(t0, a.x, b.x, t)
	f.mul(t1, a.y, b.y, t)
	f.mul(t2, a.z, b.z, t)
	f.add(t3, a.x, a.y)
	f.add(t4, b.x, b.y)
	f.mul(t3, t3, t4, t)
	f.add(t4, t0, t1)
	f.sub(t3, t3, t4)
	f.add(t4, a.y, a.z)
	f.add(x3, b.y, b.z)
	f.mul(t4, t4, x3, t)
	f.add(x3, t1, t2)
	f.sub(t4, t4, x3)
	f.add(x3, a.x, a.z)
	f.add(y3, b.x, b.z)
	f.mul(x3, x3, y3, t)
	f.add(y3, t0, t2)
	f.sub(y3, x3, y3)
	f.mul(z3, c.b, t2, t)
	f.sub(x3, y3, z3)
	f.add(z3, x3, x3)
	f.add(x3, x3, z3)
	f.sub(z3, t1, x3)
	f.add(x3, t1, x3)
	f.mul(y3, c.b, y3, t)
	f.add(t1, t2, t2)
	f.add(t2, t1, t2)
	f.sub(y3, y3, t2)
	f.sub(y3, y3, t0)
	f.add(t1, y3, y3)
	f.add(y3, t1, y3)
	f.add(t1, t0, t0)
	f.add(t0, t1, t0)
	f.sub(t0, t0, t2)
	f.mul(t1, t4, y3, t)
	f.mul(t2, t0, y3, t)
	f.mul(y3, x3, z3, t)
	f.add(y3, y3, t2)
	f.mul(x3, x3, t3, t)
	f.sub(x3, x3, t1)
	f.mul(z3, t4, z3, t)
	f.mul(t1, t3, t0, t)
	f.add(z3, z3, t1)
	copy(out.x, x3)
	copy(out.y, y3)
	copy(out.z, z3)
}
