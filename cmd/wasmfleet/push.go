package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/filterbuild"
	"github.com/wasmfleet/wasmfleet/internal/ociartifact"
)

func pushCmd() *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push FILE.wasm oci://REGISTRY/REPO:TAG",
		Short: "Push a module to an OCI registry as a Wasm artifact and print its digest",
		Long: `Writes FILE.wasm as a Wasm OCI artifact (config ` + ociartifact.ConfigMediaType + `,
one layer ` + ociartifact.LayerMediaType + `), which Istio, Envoy Gateway,
oras and crane read and which a control plane watching the tag picks up.
NAME.manifest.json beside the file, if present, becomes the manifest's
annotations (name, version, capabilities). Credentials come from the Docker
config file (docker login) and its credential helpers. Prints the manifest
digest; sign that with cosign to satisfy require_signature.`,
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
			digest, err := ociartifact.Push(cmd.Context(), ref, filepath.Base(path), module, manifest, ociartifact.Remote{Insecure: insecure})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ref.Pinned(digest).String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to the registry")
	return cmd
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
