package abi

import (
	"context"
	"strings"
	"testing"

	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

// TestTrialHostProvidesEveryAcceptedImport ties the allowlist to the host
// admission's trial run uses: a module whose imports CheckImports accepts
// must never fail to instantiate in controlplane/wasmhost for want of one.
// (The host may serve more, e.g. all of wazero's WASI; Envoy's own limits
// are this table's business.)
func TestTrialHostProvidesEveryAcceptedImport(t *testing.T) {
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	n := 0
	for _, row := range hostTable {
		for _, mod := range row.modules {
			for _, name := range strings.Fields(row.names) {
				n++
				if !rt.Provides(mod, name) {
					t.Errorf("%s.%s: accepted by CheckImports (%s), not provided by wasmhost", mod, name, row.host)
				}
			}
		}
	}
	if n != len(hostFuncs) {
		t.Fatalf("walked %d imports, the table has %d", n, len(hostFuncs))
	}
}
