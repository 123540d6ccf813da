package oci

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		want     time.Duration
	}{
		{name: "healthy", failures: 0, want: time.Second},
		{name: "one failure", failures: 1, want: 2 * time.Second},
		{name: "three failures", failures: 3, want: 8 * time.Second},
		{name: "capped", failures: 10, want: 30 * time.Second},
		{name: "many failures stay capped", failures: 1000, want: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(time.Second, 30*time.Second, tt.failures); got != tt.want {
				t.Fatalf("backoff after %d failures = %s, want %s", tt.failures, got, tt.want)
			}
		})
	}
}
