package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/fleet"
)

func statusCmd() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each filter's versions and rollout, and which node runs which version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st admin.Status
			if err := c.do("GET", "/api/v1/status", nil, &st); err != nil {
				return err
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	addAdminFlags(cmd, &c)
	return cmd
}

func printStatus(w io.Writer, st admin.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILTER\tPOS\tSTABLE\tCANDIDATE\tROLLOUT\tSTATE\tLAST ERROR")
	for _, f := range st.Filters {
		pos := "-"
		if f.Position >= 0 {
			pos = fmt.Sprint(f.Position)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, pos, orDash(f.Stable.Short()), orDash(f.Candidate.Short()),
			rolloutCell(f), filterState(f), orDash(f.LastError))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCLUSTER\tENVOY\tLAST PUSH\tFILTER\tACKED\tNACKED")
	for _, n := range st.Nodes {
		push := lastPushCell(n)
		if len(n.Filters) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\n", n.ID, orDash(n.Cluster), orDash(n.UserAgent), push)
		}
		for _, f := range n.Filters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, orDash(n.Cluster), orDash(n.UserAgent), push, f.Filter, versionsCell(f.Acked), nackCell(f))
		}
	}
	tw.Flush()
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "(no node connected)")
	}
}

func rolloutCell(f controller.FilterStatus) string {
	if f.Candidate == "" {
		return "-"
	}
	s := fmt.Sprintf("%d%% by %s", f.Percent, f.By)
	if len(f.Steps) > 0 {
		s += fmt.Sprintf(", step %d/%d", f.Step+1, len(f.Steps))
	}
	return s
}

func filterState(f controller.FilterStatus) string {
	switch {
	case f.Retired:
		return "retired"
	case f.Paused:
		return "paused"
	case f.Candidate != "":
		return "rolling out"
	case f.Stable != "":
		return "stable"
	}
	return "no version"
}

// lastPushCell is how the node answered the last new ECDS version it was
// sent and how long it took: for inline code, the time to load the module.
func lastPushCell(n fleet.NodeStatus) string {
	for _, ts := range n.Types {
		if ts.TypeURL != resource.ExtensionConfigType || ts.LastAnswer == nil {
			continue
		}
		verb := "ack"
		if ts.LastAnswer.NACK {
			verb = "nack"
		}
		return verb + " in " + ts.LastAnswer.Latency.Round(time.Millisecond).String()
	}
	return "-"
}

func nackCell(f fleet.FilterStatus) string {
	if len(f.Nacked) == 0 {
		return "-"
	}
	short := make([]string, len(f.Nacked))
	for i, d := range f.Nacked {
		short[i] = d.Short()
	}
	return strings.Join(short, "+") + ": " + f.Reason
}
