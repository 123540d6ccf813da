package dataplane

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []error
	}{
		{name: "complete", cfg: Config{NodeID: "n", XDSAddr: "127.0.0.1:1"}},
		{name: "empty lists both", cfg: Config{}, want: []error{ErrNoNodeID, ErrNoXDSAddr}},
		{name: "no address", cfg: Config{NodeID: "n"}, want: []error{ErrNoXDSAddr}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (len(tc.want) == 0) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Validate() = %v, want it to include %v", err, w)
				}
			}
		})
	}
}

func TestAwait(t *testing.T) {
	tests := []struct {
		name    string
		after   int // cond turns true on this call; 0 = never
		wantErr error
	}{
		{name: "already true", after: 1},
		{name: "true later", after: 5},
		{name: "never", wantErr: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			calls := 0
			err := Await(ctx, func() bool {
				calls++
				return tc.after > 0 && calls >= tc.after
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Await() = %v, want %v", err, tc.wantErr)
			}
			if tc.after > 0 && calls != tc.after {
				t.Errorf("cond called %d times, want %d", calls, tc.after)
			}
		})
	}
}

func TestDialAddr(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "ipv4 any", in: "0.0.0.0:10000", want: "127.0.0.1:10000"},
		{name: "ipv6 any", in: "[::]:10000", want: "[::1]:10000"},
		{name: "empty host", in: ":10000", want: "127.0.0.1:10000"},
		{name: "loopback stays", in: "127.0.0.1:5", want: "127.0.0.1:5"},
		{name: "named host stays", in: "localhost:5", want: "localhost:5"},
		{name: "not an address", in: "nonsense", want: "nonsense"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DialAddr(tc.in); got != tc.want {
				t.Errorf("DialAddr(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
