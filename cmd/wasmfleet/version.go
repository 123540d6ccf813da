package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/api"
)

// versions is what `version` prints; Server is absent with --client.
type versions struct {
	Client api.BuildInfo  `json:"client"`
	Server *api.BuildInfo `json:"server,omitempty"`
}

func versionCmd() *cobra.Command {
	var (
		c          adminClient
		out        outputFormat
		clientOnly bool
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and the control plane's (over the admin API)",
		Long: `Prints this binary's version, and the version of the control plane at --admin
(GET /api/v1/version). If the control plane cannot be reached, the client's
version is still printed, and the exit code is 3.
` + exitCodesHelp,
		Example: `  wasmfleet version
  wasmfleet version --client -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versions{Client: admin.Build()}
			var err error
			if !clientOnly {
				var server api.BuildInfo
				if err = c.do(cmd.Context(), "GET", "/version", nil, &server); err == nil {
					v.Server = &server
				}
			}
			if perr := out.print(cmd.OutOrStdout(), v, func(w io.Writer) error { return printVersions(w, v) }); perr != nil {
				return perr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only the client's version; no admin API needed")
	addAdminFlags(cmd, &c)
	addOutputFlag(cmd, &out)
	return cmd
}

func printVersions(w io.Writer, v versions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tVERSION\tREVISION\tGO\tPLATFORM")
	row := func(who string, b api.BuildInfo) {
		rev := orDash(b.Revision)
		if b.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", who, b.Version, rev, b.GoVersion, b.Platform)
	}
	row("client", v.Client)
	if v.Server != nil {
		row("server", *v.Server)
	}
	return tw.Flush()
}
