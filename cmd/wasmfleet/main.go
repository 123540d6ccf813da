// Command wasmfleet is the whole product in one binary: the control plane
// (serve), offline checks (validate), filter builds (build), registry pushes
// (push), and clients of the admin API (status, rollout).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errSilent is returned by commands that already printed why they failed.
var errSilent = errors.New("")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "wasmfleet",
		Short:         "Distribute proxy-wasm filters to a fleet of Envoy proxies over xDS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), validateCmd(), buildCmd(), pushCmd(), statusCmd(), rolloutCmd(), certsCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "wasmfleet:", err)
		}
		os.Exit(1)
	}
}
