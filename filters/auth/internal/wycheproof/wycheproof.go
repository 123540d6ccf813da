// Package wycheproof reads C2SP Wycheproof test vector files for the
// auth filter's crypto tests, natively and as wasip1 (the files are read
// through the test's working directory, which wasmtest preopens).
package wycheproof

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Hex is a hex string in a Wycheproof file, decoded.
type Hex []byte

// UnmarshalJSON decodes the hex string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// Read decodes the vector file at path into v, failing t when it cannot.
func Read(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
