package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/mtls"
	"github.com/wasmfleet/wasmfleet/internal/certgen"
)

func certsCmd() *cobra.Command {
	var (
		dir         string
		serverHosts []string
		nodes       []string
		identity    string
		validity    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a lab fleet's certificates: a CA, the control plane's server certificate, one client certificate per node",
		Long: `certs writes PEM files for mutual TLS between wasmfleet and its Envoys into --dir:

  ca.crt, ca.key           the CA (reused if present, so later runs add nodes)
  server.crt, server.key   the control plane's certificate for --server-host names/IPs
  node-ID.crt, node-ID.key one per --node, whose SAN is --node-identity with {node}
                           replaced by the node id (a URI SAN for a URI, else a DNS SAN)

Point tls.cert_file/key_file/client_ca_file at server.crt, server.key and ca.crt,
and each Envoy's bootstrap at its node-ID files and ca.crt (README, "Securing the
fleet"). For a lab: a production fleet takes certificates from its own PKI.`,
		Example: `  wasmfleet certs --node envoy-1 --node envoy-2
  wasmfleet certs --dir tls --server-host cp.lab.internal --node edge-7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := mtls.ParseNodeIdentity(identity)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			caCert, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			ca, err := certgen.LoadCA(caCert, caKey)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if ca, err = certgen.NewCA("wasmfleet lab CA", validity); err != nil {
					return err
				}
				pair, err := ca.Pair()
				if err != nil {
					return err
				}
				if _, _, err := pair.Write(dir, "ca"); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s, %s\n", caCert, caKey)
			case err != nil:
				return err
			default:
				fmt.Fprintf(out, "using the CA in %s\n", caCert)
			}
			if len(serverHosts) > 0 {
				pair, err := ca.Server(serverHosts, validity)
				if err != nil {
					return err
				}
				c, k, err := pair.Write(dir, "server")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s, %s for %s\n", c, k, strings.Join(serverHosts, ", "))
			}
			for _, n := range nodes {
				if n == "" || strings.ContainsAny(n, `/\ `) {
					return fmt.Errorf("certs: node id %q cannot be a file name", n)
				}
				san := id.Want(n)
				var uri string
				var dns []string
				if strings.Contains(san, "://") {
					uri = san
				} else {
					dns = []string{san}
				}
				pair, err := ca.Node(n, uri, dns, validity)
				if err != nil {
					return err
				}
				c, k, err := pair.Write(dir, "node-"+n)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s, %s for %s\n", c, k, san)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "tls", "directory to write the PEM files to")
	f.StringSliceVar(&serverHosts, "server-host", []string{"localhost", "127.0.0.1"}, "DNS names and IPs the control plane is reached by (empty: no server certificate)")
	f.StringSliceVar(&nodes, "node", nil, "node id to issue a client certificate for (repeat or comma-separate)")
	f.StringVar(&identity, "node-identity", config.DefaultNodeIdentity, "SAN of a node certificate, {node} standing for the id; must match tls.node_identity")
	f.DurationVar(&validity, "validity", certgen.DefaultValidity, "how long the certificates are valid")
	return cmd
}
