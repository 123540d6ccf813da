package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func TestSum256KnownAnswers(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// FIPS 180-4 examples (NIST CSRC "SHA256.pdf").
		{"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"two blocks", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
			"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sum256([]byte(tt.in))
			if hex.EncodeToString(got[:]) != tt.want {
				t.Fatalf("Sum256(%q) = %x, want %s", tt.in, got, tt.want)
			}
			if s := SumString(tt.in); s != got {
				t.Fatalf("SumString(%q) = %x, Sum256 = %x", tt.in, s, got)
			}
		})
	}
}

// TestHashMatchesStandardLibrary covers every padding case (lengths around
// the 56-byte boundary, several blocks) and arbitrary write splits.
func TestHashMatchesStandardLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1100)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= len(buf); n++ {
		msg := buf[:n]
		want := sha256.Sum256(msg)
		if got := Sum256(msg); got != want {
			t.Fatalf("len %d: Sum256 = %x, want %x", n, got, want)
		}
		d := New()
		for rest := msg; len(rest) > 0; {
			c := 1 + r.IntN(len(rest))
			if c%2 == 0 {
				d.Write(rest[:c])
			} else {
				d.WriteString(string(rest[:c]))
			}
			rest = rest[c:]
		}
		if got := d.Sum(nil); string(got) != string(want[:]) {
			t.Fatalf("len %d in pieces: %x, want %x", n, got, want)
		}
		// Sum must not disturb the running hash.
		d.Write([]byte{7})
		want2 := sha256.Sum256(append(append([]byte(nil), msg...), 7))
		if got := d.Sum(nil); string(got) != string(want2[:]) {
			t.Fatalf("len %d, written after Sum: %x, want %x", n, got, want2)
		}
	}
}

func TestMACMatchesStandardLibrary(t *testing.T) {
	for _, keyLen := range []int{0, 1, 32, 63, 64, 65, 200} {
		key := make([]byte, keyLen)
		for i := range key {
			key[i] = byte(i*7 + 1)
		}
		m := NewMAC(key)
		for _, msg := range []string{"", "a", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0", string(make([]byte, 300))} {
			ref := hmac.New(sha256.New, key)
			ref.Write([]byte(msg))
			want := ref.Sum(nil)
			got := m.Sum([]byte(msg))
			if !Equal(got[:], want) {
				t.Fatalf("key %d bytes, msg %d bytes: %x, want %x", keyLen, len(msg), got, want)
			}
		}
	}
}

// TestMACRFC4231 is RFC 4231's test case 2 (a short key).
func TestMACRFC4231(t *testing.T) {
	got := NewMAC([]byte("Jefe")).Sum([]byte("what do ya want for nothing?"))
	const want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if hex.EncodeToString(got[:]) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", "abc", "abc", true},
		{"empty", "", "", true},
		{"last byte differs", "abc", "abd", false},
		{"first byte differs", "xbc", "abc", false},
		{"lengths differ", "abc", "ab", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Equal([]byte(tt.a), []byte(tt.b)); got != tt.want {
				t.Fatalf("Equal(%q, %q) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func FuzzSum256(f *testing.F) {
	f.Add([]byte("abc"), 1)
	f.Add(make([]byte, 200), 64)
	f.Fuzz(func(t *testing.T, msg []byte, split int) {
		want := sha256.Sum256(msg)
		d := New()
		if split < 0 || split > len(msg) {
			split = len(msg) / 2
		}
		d.Write(msg[:split])
		d.Write(msg[split:])
		if got := d.Sum(nil); string(got) != string(want[:]) {
			t.Fatalf("%x", msg)
		}
	})
}

func BenchmarkSum256(b *testing.B) {
	msg := make([]byte, 300) // a typical JWT signing input
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Sum256(msg)
	}
}
