package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/internal/filterbuild"
)

func buildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build [FILTER_DIR...]",
		Short: "Compile filters to proxy-wasm modules and check their ABI and imports",
		Long: `Compiles each filter directory (default: every directory under ./filters with
a manifest.json) with the standard Go toolchain (GOOS=wasip1 GOARCH=wasm,
-buildmode=c-shared) into OUT/NAME.wasm plus OUT/NAME.manifest.json, then checks
the module the way admission will: proxy-wasm ABI exports, and host imports
(reporting the oldest Envoy that provides them). Files are written atomically,
so -o can point straight at the watched directory.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := moduleRoot()
			if err != nil {
				return err
			}
			var results []filterbuild.Result
			if len(args) == 0 {
				if results, err = filterbuild.BuildAll(cmd.Context(), root, out); err != nil {
					return err
				}
			}
			for _, dir := range args {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return err
				}
				r, err := filterbuild.Build(cmd.Context(), root, abs, out)
				if err != nil {
					return err
				}
				results = append(results, r)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILTER\tVERSION\tSIZE\tSHA256\tABI\tNEEDS\tFILE")
			var errs []error
			for _, r := range results {
				exp, imp, err := checkModule(r.Module)
				if err != nil {
					errs = append(errs, err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%.2f MB\t%s\t%s\t%s\t%s\n", r.Manifest.Name, r.Manifest.Version,
					float64(r.Size)/1e6, r.Digest.Short(), exp.ABIVersion, imp.MinHost, r.Module)
			}
			tw.Flush()
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "bin/filters", "directory for NAME.wasm and NAME.manifest.json")
	return cmd
}

// checkModule runs the structural checks admission runs first.
func checkModule(path string) (abi.ExportReport, abi.ImportReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return abi.ExportReport{}, abi.ImportReport{}, err
	}
	info, err := abi.Inspect(b)
	if err != nil {
		return abi.ExportReport{}, abi.ImportReport{}, fmt.Errorf("%s: %w", path, err)
	}
	exp, imp := abi.CheckExports(info), abi.CheckImports(info)
	if err := errors.Join(exp.Err(), imp.Err()); err != nil {
		return exp, imp, fmt.Errorf("%s: %w", path, err)
	}
	return exp, imp, nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("build: no go.mod here or above: run it inside the wasmfleet repository")
		}
		dir = parent
	}
}
