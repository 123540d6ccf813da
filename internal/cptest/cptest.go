// Package cptest runs a real control plane for a test, the one way every
// test package that needs one starts it: controlplane.New, Start in the
// background until the test ends, then the error Start returned is checked.
package cptest

import (
	"context"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane"
)

// Start runs a control plane from opts until tb ends and returns it. Its
// addresses are known at once (cp.Addrs); a failure to start fails tb.
// Cleanups registered after Start run before the control plane stops, so
// a client started later is stopped first.
func Start(tb testing.TB, opts controlplane.Options) *controlplane.ControlPlane {
	tb.Helper()
	cp, err := controlplane.New(opts)
	if err != nil {
		tb.Fatalf("control plane: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Start(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("control plane: %v", err)
		}
	})
	return cp
}
