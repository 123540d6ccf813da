package digest

// MAC is HMAC-SHA256 (RFC 2104) with a fixed key, ready to sign many
// messages: the padded key blocks are hashed once, at NewMAC.
type MAC struct {
	inner, outer Hash
}

// NewMAC prepares HMAC-SHA256 with key. A key longer than a block is hashed
// first, as RFC 2104 says.
func NewMAC(key []byte) *MAC {
	if len(key) > blockSize {
		sum := Sum256(key)
		key = sum[:]
	}
	var ipad, opad [blockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	m := &MAC{}
	m.inner.Reset()
	m.inner.Write(ipad[:])
	m.outer.Reset()
	m.outer.Write(opad[:])
	return m
}

// Sum is the HMAC of msg. It does not change m: safe for concurrent use.
func (m *MAC) Sum(msg []byte) [Size]byte {
	in := m.inner
	in.Write(msg)
	var inner [Size]byte
	in.Sum(inner[:0])
	out := m.outer
	out.Write(inner[:])
	var sum [Size]byte
	out.Sum(sum[:0])
	return sum
}

// Equal compares two byte slices in time that depends only on their
// lengths, so a MAC check does not tell an attacker how many leading bytes
// of a forged tag were right.
func Equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i := range a {
		diff |= a[i] ^ b[i]
	}
	return diff == 0
}
