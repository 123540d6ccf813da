package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/filterbuild"
)

func buildCmd() *cobra.Command {
	var outDir string
	out := outputFormat{legacyDir: &outDir}
	cmd := &cobra.Command{
		Use:   "build [FILTER_DIR...]",
		Short: "Compile filters to proxy-wasm modules and check their ABI and imports",
		Long: `Compiles each filter directory (default: every directory under ./filters with
a manifest.json) with the standard Go toolchain (GOOS=wasip1 GOARCH=wasm,
-buildmode=c-shared) into DIR/NAME.wasm plus DIR/NAME.manifest.json, then checks
the module the way admission will: proxy-wasm ABI exports, and host imports
(reporting the oldest Envoy that provides them). Files are written atomically,
so --out-dir can point straight at the watched directory. -o is the output
format, as on every command; -o DIR, from when it was the directory, still
works but is deprecated.`,
		Example: `  wasmfleet build
  wasmfleet build filters/auth --out-dir filters.d
  wasmfleet build -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out.legacyUsed {
				fmt.Fprintf(cmd.ErrOrStderr(), "wasmfleet: build -o %s is deprecated: use --out-dir %[1]s (-o is the output format)\n", outDir)
			}
			root, err := moduleRoot()
			if err != nil {
				return err
			}
			dirs := make([]string, len(args))
			for i, dir := range args {
				if dirs[i], err = filepath.Abs(dir); err != nil {
					return err
				}
			}
			results, buildErr := filterbuild.BuildAll(cmd.Context(), root, dirs, outDir, cmd.ErrOrStderr())
			var (
				built []builtModule
				errs  []error
			)
			for _, r := range results {
				exp, imp, err := checkModule(r.Module)
				b := builtModule{Filter: r.Manifest.Name, Version: r.Manifest.Version, Size: r.Size, SHA256: r.Digest,
					ABI: exp.ABIVersion, Needs: imp.MinHost, File: r.Module}
				if err != nil {
					errs = append(errs, err)
					b.Error = err.Error()
				}
				built = append(built, b)
			}
			if err := out.print(cmd.OutOrStdout(), built, func(w io.Writer) error { return printBuilt(w, built) }); err != nil {
				return err
			}
			return errors.Join(append(errs, buildErr)...)
		},
	}
	cmd.Flags().StringVar(&outDir, "out-dir", "bin/filters", "directory for NAME.wasm and NAME.manifest.json")
	addOutputFlag(cmd, &out)
	return cmd
}

// builtModule is one line of `build`'s output.
type builtModule struct {
	Filter  string       `json:"filter"`
	Version string       `json:"version"`
	Size    int64        `json:"size"`
	SHA256  types.Digest `json:"sha256"`
	ABI     string       `json:"abi"`
	// Needs is the oldest Envoy that provides the module's host imports.
	Needs string `json:"needs"`
	File  string `json:"file"`
	// Error is why the module would not pass admission's structural checks.
	Error string `json:"error,omitempty"`
}

func printBuilt(w io.Writer, built []builtModule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILTER\tVERSION\tSIZE\tSHA256\tABI\tNEEDS\tFILE")
	for _, b := range built {
		fmt.Fprintf(tw, "%s\t%s\t%.2f MB\t%s\t%s\t%s\t%s\n", b.Filter, b.Version, float64(b.Size)/1e6, b.SHA256.Short(), b.ABI, b.Needs, b.File)
	}
	return tw.Flush()
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
