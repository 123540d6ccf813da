package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
)

func statusCmd() *cobra.Command {
	var (
		c   adminClient
		out outputFormat
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each filter's versions and rollout, and which node runs which version",
		Long: `Shows a refused edit of the config file, if any, then each filter's stable and
candidate versions, its rollout (percent, step, when the next step is due,
pause) and last error, then each connected node with what it acked and
NACKed. -o json and -o yaml print GET /api/v1/status as it is.
` + exitCodesHelp,
		Example: `  wasmfleet status
  wasmfleet status --admin cp.internal:18002 -o json | jq '.filters[] | {name, candidate}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.Status
			if err := c.do(cmd.Context(), "GET", "/status", nil, &st); err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), st, func(w io.Writer) error { return printStatus(w, st) })
		},
	}
	addAdminFlags(cmd, &c)
	addOutputFlag(cmd, &out)
	return cmd
}

func printStatus(w io.Writer, st api.Status) error {
	if r := st.RefusedReload; r != nil {
		fmt.Fprintf(w, "CONFIG %s: the change at %s was refused; running the config from before it:\n  %s\n\n",
			r.Path, r.At.Local().Format(time.DateTime), strings.ReplaceAll(r.Reason, "\n", "\n  "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILTER\tPOS\tSTABLE\tCANDIDATE\tROLLOUT\tNEXT STEP\tSTATE\tLAST ERROR")
	for _, f := range st.Filters {
		pos := "-"
		if f.Position >= 0 {
			pos = fmt.Sprint(f.Position)
		}
		next := "-"
		if !f.NextStepAt.IsZero() {
			next = f.NextStepAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, pos, orDash(f.Stable.Short()), orDash(f.Candidate.Short()),
			rolloutCell(f), next, filterState(f), orDash(f.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCLUSTER\tENVOY\tLAST PUSH\tFILTER\tACKED\tNACKED")
	for _, n := range st.Nodes {
		push := lastPushCell(n)
		if len(n.Filters) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\n", n.ID, orDash(n.Cluster), orDash(n.UserAgent), push)
		}
		for _, f := range n.Filters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, orDash(n.Cluster), orDash(n.UserAgent), push, f.Filter, runningCell(&f.Acked), nackCell(f))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "(no node connected)")
	}
	return nil
}

// rolloutCell is the rollout of a filter with a candidate, e.g.
// "50% by node, step 2/3"; `rollout status` says it the same way.
func rolloutCell(f api.Filter) string {
	if f.Candidate == "" {
		return "-"
	}
	s := fmt.Sprintf("%d%% by %s", f.Percent, f.By)
	if len(f.Steps) > 0 {
		s += fmt.Sprintf(", step %d/%d", f.Step, len(f.Steps))
	}
	return s
}

func filterState(f api.Filter) string {
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
func lastPushCell(n api.Node) string {
	for _, ts := range n.Types {
		if ts.TypeURL != resource.ExtensionConfigType || ts.LastAnswer == nil {
			continue
		}
		verb := "ack"
		if ts.LastAnswer.NACK {
			verb = "nack"
		}
		return verb + " in " + time.Duration(ts.LastAnswer.Latency).Round(time.Millisecond).String()
	}
	return "-"
}

// runningCell is what a node runs (nil: nothing), e.g. "3f2a9c1b0d4e",
// "candidate 9c1b2d3e4f5a", or "3f2a9c1b0d4e+9c1b2d3e4f5a@12.5%" when it
// splits requests.
func runningCell(r *api.Running) string {
	switch {
	case r == nil || (r.Stable == "" && r.Candidate == ""):
		return "-"
	case r.Stable == "":
		return "candidate " + r.Candidate.Short()
	case r.Candidate == "":
		return r.Stable.Short()
	}
	return fmt.Sprintf("%s+%s@%g%%", r.Stable.Short(), r.Candidate.Short(), r.CandidatePercent)
}

func nackCell(f api.NodeFilter) string {
	if len(f.Nacked) == 0 {
		return "-"
	}
	short := make([]string, len(f.Nacked))
	for i, d := range f.Nacked {
		short[i] = d.Short()
	}
	return strings.Join(short, "+") + ": " + f.Reason
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
