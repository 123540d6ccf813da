package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/wasmfleet/wasmfleet/controlplane/admission"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/signature"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/controlplane/wasmhost"
)

func validateCmd() *cobra.Command {
	var (
		configPath, filter string
		out                outputFormat
	)
	cmd := &cobra.Command{
		Use:   "validate FILE.wasm...",
		Short: "Run the admission checks offline and print what passes and fails",
		Long: `Runs every check the control plane runs before a module reaches any Envoy:
size, wasm structure, proxy-wasm ABI exports, host imports (and which Envoy
they need), the signature (FILE.wasm.sig, with the config's trust.keys), and a trial run (instantiate, proxy_on_vm_start, proxy_on_configure
with the filter's configuration from --config and NAME.yaml beside the file).
Exits 1 if any module is rejected.`,
		Example: `  wasmfleet validate bin/filters/auth.wasm
  wasmfleet validate -c wasmfleet.yaml filters.d/*.wasm`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := config.Default()
			if configPath != "" {
				var err error
				if cfg, err = config.Load(configPath); err != nil {
					return err
				}
			}
			rt, err := wasmhost.NewRuntime(cmd.Context(), wasmhost.Config{Interpreter: true, MemoryLimitMiB: cfg.Limits.TrialMemoryMiB})
			if err != nil {
				return err
			}
			defer rt.Close(cmd.Context())
			verifier, err := signature.ForTrust(cfg.Trust)
			if err != nil {
				return err
			}
			adm := admission.New(admission.Config{
				MaxModuleBytes: cfg.Limits.MaxModuleBytes, TrialTimeout: time.Duration(cfg.Limits.TrialTimeout),
				TrialMemoryMiB: cfg.Limits.TrialMemoryMiB, Runtime: rt, Log: zap.NewNop(), Verifier: verifier,
			})
			var results []validation
			failed := false
			for _, path := range args {
				name := filter
				if name == "" {
					name = strings.TrimSuffix(filepath.Base(path), ".wasm")
				}
				v := validateOne(cmd, adm, cfg, path, name)
				failed = failed || !v.Admitted
				results = append(results, v)
				if out.value == "table" {
					// Each module as soon as it is checked: a trial run takes seconds.
					printValidation(cmd.OutOrStdout(), v)
				}
			}
			if out.value != "table" {
				if err := out.print(cmd.OutOrStdout(), results, nil); err != nil {
					return err
				}
			}
			if failed {
				return errSilent
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file with the filter's settings")
	cmd.Flags().StringVar(&filter, "filter", "", "filter name (default: the file name without .wasm)")
	addOutputFlag(cmd, &out)
	return cmd
}

// validation is what validate found out about one module; -o json and
// -o yaml print a list of them.
type validation struct {
	File     string       `json:"file"`
	Filter   string       `json:"filter"`
	SHA256   types.Digest `json:"sha256,omitempty"`
	Size     int          `json:"size,omitempty"`
	Admitted bool         `json:"admitted"`
	// Error is why the module was rejected.
	Error  string  `json:"error,omitempty"`
	Checks []check `json:"checks,omitempty"`
	// Needs is the oldest Envoy that provides the module's host imports.
	Needs string `json:"needs,omitempty"`
}

type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func validateOne(cmd *cobra.Command, adm admission.Admitter, cfg config.Config, path, name string) validation {
	v := validation{File: path, Filter: name}
	reject := func(err error) validation {
		v.Error = err.Error()
		return v
	}
	settings, _ := cfg.FilterByName(name)
	yamlPath := strings.TrimSuffix(path, ".wasm") + ".yaml"
	if raw, err := os.ReadFile(yamlPath); err == nil {
		if settings, err = config.ParseFilterSettings(yamlPath, settings, raw); err != nil {
			return reject(err)
		}
		settings = settings.WithDefaults()
	} else if !errors.Is(err, os.ErrNotExist) {
		return reject(err)
	}
	module, err := readLimited(path, cfg.Limits.MaxModuleBytes)
	if err != nil {
		return reject(err)
	}
	v.SHA256, v.Size = types.DigestOf(module), len(module)
	var sig []byte
	if b, err := os.ReadFile(path + ".sig"); err == nil {
		sig = b
	}
	rep, err := adm.Admit(cmd.Context(), admission.Request{
		File: path, Filter: name, Module: module, Digest: v.SHA256, Settings: settings, Signature: sig,
	})
	for _, c := range rep.Checks {
		v.Checks = append(v.Checks, check{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	v.Needs = rep.MinHost
	if err != nil {
		return reject(err)
	}
	v.Admitted = true
	return v
}

func printValidation(w io.Writer, v validation) {
	if v.SHA256 != "" {
		fmt.Fprintf(w, "%s  filter %s  sha256:%s  %d bytes\n", v.File, v.Filter, v.SHA256, v.Size)
	}
	for _, c := range v.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %-12s %s\n", mark, c.Name, c.Detail)
	}
	if v.Needs != "" {
		fmt.Fprintf(w, "  needs %s\n", v.Needs)
	}
	if v.Admitted {
		fmt.Fprintf(w, "admitted\n\n")
	} else {
		fmt.Fprintf(w, "rejected: %s\n\n", v.Error)
	}
}

// readLimited reads a file but refuses one larger than limit without reading
// it, so a 200 MB file costs a stat, not 200 MB.
func readLimited(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes is over the limit of %d (limits.max_module_bytes): %w", path, fi.Size(), limit, admission.ErrTooLarge)
	}
	return os.ReadFile(path)
}
