package api

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func TestResolveDigest(t *testing.T) {
	a := types.Digest("abcd1234" + "0000000000000000000000000000000000000000000000000000000000")[:64]
	b := types.Digest("abcd5678" + "0000000000000000000000000000000000000000000000000000000000")[:64]
	known := []types.Digest{a, b, a}
	tests := []struct {
		name, in string
		want     types.Digest
		wantErr  error
	}{
		{name: "whole", in: string(b), want: b},
		{name: "sha256: and a prefix", in: "sha256:abcd1", want: a},
		{name: "listed twice is still one version", in: "abcd12", want: a},
		{name: "ambiguous", in: "abcd", wantErr: ErrAmbiguousDigest},
		{name: "unknown", in: "ffff", wantErr: ErrUnknownDigest},
		{name: "too short", in: "abc", wantErr: ErrBadDigest},
		{name: "upper case", in: "ABCD1", wantErr: ErrBadDigest},
		{name: "too long", in: string(a) + "0", wantErr: ErrBadDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveDigest(tt.in, known)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ResolveDigest(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	b, err := json.Marshal(Answer{Latency: Duration(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil || a.Latency != Duration(1500*time.Millisecond) {
		t.Fatalf("%s decoded to %v, %v", b, a.Latency, err)
	}
	if err := json.Unmarshal([]byte(`{"latency":1500000000}`), &a); err == nil {
		t.Error("nanoseconds as a number were accepted; the wire format is a string")
	}
}
