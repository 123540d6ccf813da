package jwt

import (
	"encoding/base64"
	"testing"
)

func FuzzDecodeSegment(f *testing.F) {
	for _, s := range []string{"", "QQ", "QR", "QUI", "QUJD", "A", "a-_z", "QQ==", "Q\nQ", "+/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeSegment(s)
		want, err := base64.RawURLEncoding.Strict().DecodeString(s)
		wantOK := err == nil
		for i := 0; i < len(s); i++ {
			if s[i] == '\r' || s[i] == '\n' {
				wantOK = false // the standard decoder skips them; a token must not contain them
			}
		}
		if ok != wantOK || ok && string(got) != string(want) {
			t.Fatalf("decodeSegment(%q) = %x, %v; encoding/base64 says %x, %v", s, got, ok, want, err)
		}
	})
}

func TestSecondsToNanos(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1700000000", 1700000000e9, true},
		{"1700000000.5", 1700000000.5e9, true},
		{"1.7e9", 1.7e18, true},
		{"17E+8", 1.7e18, true},
		{"1.123456789123", 1123456789, true}, // below a nanosecond: truncated
		{"0.0000000001", 1, true},            // positive, but under 1 ns
		{"1e-400", 1, true},
		{"8999999999", 8999999999e9, true},
		{"9000000001", 9e18, true}, // saturated
		{"1e300", 9e18, true},
		{"123456789012345678901234567890", 9e18, true},
		{"0", 0, false},
		{"0.000", 0, false},
		{"0e5", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"1x", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := secondsToNanos(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("secondsToNanos(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
