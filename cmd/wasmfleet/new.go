package main

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/internal/scaffold"
)

func newCmd() *cobra.Command {
	var module, checkout string
	cmd := &cobra.Command{
		Use:   "new NAME [DIR]",
		Short: "Scaffold a filter as a Go module of its own",
		Long: `Writes a new filter into DIR (default ./NAME, which must not exist or be
empty): a main package on wasmfleet's sdk, a test that runs its cases natively
and as the compiled module, NAME.yaml (its settings), a manifest and a README,
then runs go mod tidy there. The module reaches the sdk through a replace
directive to a wasmfleet checkout: --wasmfleet, or the one the current
directory is in. docs/writing-filters.md goes from here to a deployed filter.`,
		Example: `  # from a wasmfleet checkout
  wasmfleet new rate-tag ~/src/rate-tag --module example.com/team/rate-tag
  cd ~/src/rate-tag && go test ./...`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, dir := args[0], args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			if checkout == "" {
				var err error
				if checkout, err = scaffold.FindCheckout("."); err != nil {
					return withCode(exitUsage, fmt.Errorf("%w (or name a checkout with --wasmfleet)", err))
				}
			}
			files, err := scaffold.Create(scaffold.Options{Name: name, Dir: dir, Module: module, Wasmfleet: checkout})
			if err != nil {
				return err
			}
			tidy := exec.CommandContext(cmd.Context(), "go", "mod", "tidy")
			tidy.Dir, tidy.Stdout, tidy.Stderr = dir, cmd.ErrOrStderr(), cmd.ErrOrStderr()
			if err := tidy.Run(); err != nil {
				return fmt.Errorf("go mod tidy in %s: %w", dir, err)
			}
			out := cmd.OutOrStdout()
			for _, f := range files {
				fmt.Fprintln(out, "wrote", f)
			}
			abs, _ := filepath.Abs(dir)
			fmt.Fprintf(out, "\nnext:\n  cd %s\n  go test ./...\n  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o %s.wasm .\n", abs, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "Go module path of the new filter (default example.com/NAME)")
	cmd.Flags().StringVar(&checkout, "wasmfleet", "", "wasmfleet checkout the filter builds against (default: the one the current directory is in)")
	return cmd
}
