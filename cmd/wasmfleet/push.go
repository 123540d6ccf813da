package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/filterbuild"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

func pushCmd() *cobra.Command {
	var (
		insecure bool
		format   string
		out      outputFormat
	)
	cmd := &cobra.Command{
		Use:   "push FILE.wasm oci://REGISTRY/REPO:TAG",
		Short: "Push a module to an OCI registry and print its pinned reference",
		Long: `Writes FILE.wasm to an OCI registry. The default layout (--format image) is
an OCI image whose one layer holds NAME/plugin.wasm: Istio, Envoy Gateway and
wasmfleet read it, oras pull and crane export give the module back.
--format wasm-artifact writes the one-layer Wasm artifact (config
` + ociartifact.ConfigMediaType + `, layer ` + ociartifact.LayerMediaType + `), which
wasmfleet, oras and crane read but Istio and Envoy Gateway refuse.
NAME.manifest.json beside the file, if present, becomes the manifest's
annotations (name, version, capabilities). Credentials come from the Docker
config file (docker login) and its credential helpers. Prints the reference
pinned to the manifest digest, as cosign, crane and oras take it, and on
stderr the cosign command that signs it (for require_signature).`,
		Example: `  wasmfleet push bin/filters/auth.wasm oci://registry.example.com/filters/auth:1.2.0
  wasmfleet push --insecure bin/filters/auth.wasm oci://127.0.0.1:5000/filters/auth:dev`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			ref, err := ociartifact.ParseRef(args[1])
			if err != nil {
				return err
			}
			module, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("push: %w", err)
			}
			if !bytes.HasPrefix(module, []byte("\x00asm")) {
				return fmt.Errorf("push: %s: not a wasm module", path)
			}
			manifest, err := manifestBeside(path)
			if err != nil {
				return err
			}
			f, err := ociartifact.ParseFormat(format)
			if err != nil {
				return withCode(exitUsage, err)
			}
			digest, err := ociartifact.PushAs(cmd.Context(), ref, f, filepath.Base(path), module, manifest, ociartifact.Remote{Insecure: insecure})
			if err != nil {
				return err
			}
			p := pushed{Reference: ref.Pinned(digest).Plain(), Digest: digest}
			return out.print(cmd.OutOrStdout(), p, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, p.Reference); err != nil {
					return err
				}
				flags := ""
				if insecure {
					flags = " --allow-http-registry --allow-insecure-registry"
				}
				_, err := fmt.Fprintf(cmd.ErrOrStderr(), "sign it: cosign sign --key cosign.key%s %s\n", flags, p.Reference)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to the registry")
	cmd.Flags().StringVar(&format, "format", string(ociartifact.FormatImage),
		"layout: image (read by Istio, Envoy Gateway and wasmfleet) or wasm-artifact (one Wasm layer: wasmfleet, oras and crane only)")
	addOutputFlag(cmd, &out)
	return cmd
}

// pushed is what push prints: the reference pinned to the manifest digest
// (the table is that reference alone, for $(wasmfleet push ...)).
type pushed struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// manifestBeside reads NAME.manifest.json next to NAME.wasm; nil if absent.
func manifestBeside(path string) (*types.Manifest, error) {
	m, err := filterbuild.ReadManifest(strings.TrimSuffix(path, ".wasm") + ".manifest.json")
	if errors.Is(err, filterbuild.ErrNoManifest) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	return &m, nil
}
