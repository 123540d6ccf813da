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
