package digest

import (
	"testing"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/wycheproof"
)

// TestWycheproof runs every HMAC-SHA256 vector of C2SP Wycheproof
// (testdata/wycheproof, Apache License 2.0): a valid tag must verify, an
// invalid one must not. Groups with a 128-bit tag compare the MAC's first
// 16 bytes. TestWycheproofCompiled runs this test again compiled to wasip1.
func TestWycheproof(t *testing.T) {
	var file struct {
		NumberOfTests int `json:"numberOfTests"`
		TestGroups    []struct {
			TagSize int `json:"tagSize"` // bits
			Tests   []struct {
				TcID    int            `json:"tcId"`
				Comment string         `json:"comment"`
				Key     wycheproof.Hex `json:"key"`
				Msg     wycheproof.Hex `json:"msg"`
				Tag     wycheproof.Hex `json:"tag"`
				Result  string         `json:"result"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	wycheproof.Read(t, "testdata/wycheproof/hmac_sha256_test.json", &file)
	counts := map[string]int{}
	for _, g := range file.TestGroups {
		if g.TagSize%8 != 0 || g.TagSize > 8*Size || g.TagSize == 0 {
			t.Fatalf("tag size %d bits", g.TagSize)
		}
		for _, tc := range g.Tests {
			sum := NewMAC(tc.Key).Sum(tc.Msg)
			got := Equal(sum[:g.TagSize/8], tc.Tag)
			counts[tc.Result]++
			if tc.Result == "valid" && !got || tc.Result == "invalid" && got {
				t.Errorf("tcId %d (%s, %d-byte key, %d-bit tag): verified %v, want %s", tc.TcID, tc.Comment, len(tc.Key), g.TagSize, got, tc.Result)
			}
		}
	}
	if n := counts["valid"] + counts["invalid"] + counts["acceptable"]; n != file.NumberOfTests || n == 0 {
		t.Fatalf("ran %d vectors, the file says %d", n, file.NumberOfTests)
	}
	t.Logf("%d HMAC-SHA256 vectors: %d valid, %d invalid", file.NumberOfTests, counts["valid"], counts["invalid"])
}
