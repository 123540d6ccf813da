package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/controller"
	"github.com/wasmfleet/wasmfleet/controlplane/rollout"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

func rolloutCmd() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Inspect and steer rollouts on a running control plane",
	}
	addAdminFlags(cmd, &c)

	status := &cobra.Command{
		Use:   "status FILTER",
		Short: "Stable and candidate versions, step, bad versions and history of a filter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st admin.Status
			if err := c.do("GET", "/api/v1/status", nil, &st); err != nil {
				return err
			}
			var history []types.Version
			if err := c.do("GET", "/api/v1/filters/"+url.PathEscape(args[0])+"/history", nil, &history); err != nil {
				return err
			}
			for _, f := range st.Filters {
				if f.Name == args[0] {
					if c.output == "json" {
						return printJSON(cmd.OutOrStdout(), map[string]any{"filter": f, "history": history})
					}
					printFilterDetail(cmd, f, history)
					return nil
				}
			}
			return fmt.Errorf("filter %q: %w", args[0], controller.ErrUnknownFilter)
		},
	}
	cmd.AddCommand(status)

	for _, a := range []struct {
		action controller.Action
		short  string
	}{
		{controller.Promote, "Promote the candidate to stable on every node now"},
		{controller.Pause, "Hold the rollout at its current step"},
		{controller.Resume, "Continue a paused rollout"},
		{controller.Rollback, "Drop the candidate and mark it bad: every node returns to stable"},
	} {
		var reason string
		sub := &cobra.Command{
			Use:   string(a.action) + " FILTER",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.command(cmd, args[0], a.action, admin.CommandRequest{Reason: reason})
			},
		}
		if a.action == controller.Rollback {
			sub.Flags().StringVar(&reason, "reason", "", "why, for the history")
		}
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "clear-bad FILTER DIGEST",
		Short: "Allow a rolled-back version to be rolled out again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := types.ParseDigest(args[1])
			if err != nil {
				return fmt.Errorf("digest %q: %w", args[1], err)
			}
			return c.command(cmd, args[0], controller.ClearBad, admin.CommandRequest{Digest: d})
		},
	})

	var planConfig string
	plan := &cobra.Command{
		Use:   "plan --config FILE",
		Short: "Dry run: which nodes would change version if FILE were applied now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := os.ReadFile(planConfig)
			if err != nil {
				return err
			}
			var changes []rollout.Change
			if err := c.do("POST", "/api/v1/rollout/plan", bytes.NewReader(body), &changes); err != nil {
				return fmt.Errorf("%s: %w", planConfig, err)
			}
			if c.output == "json" {
				return printJSON(cmd.OutOrStdout(), changes)
			}
			if len(changes) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no node would change")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tFILTER\tFROM\tTO")
			for _, ch := range changes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Node, ch.Filter, versionsCell(ch.From), versionsCell(ch.To))
			}
			return tw.Flush()
		},
	}
	plan.Flags().StringVarP(&planConfig, "config", "c", "wasmfleet.yaml", "the config file to compare with the running one")
	cmd.AddCommand(plan)
	return cmd
}

func (c *adminClient) command(cmd *cobra.Command, filter string, action controller.Action, req admin.CommandRequest) error {
	var body bytes.Buffer
	if err := printJSON(&body, req); err != nil {
		return err
	}
	var st controller.FilterStatus
	if err := c.do("POST", "/api/v1/rollout/"+url.PathEscape(filter)+"/"+string(action), &body, &st); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s: stable %s, candidate %s\n", action, filter, orDash(st.Stable.Short()), orDash(st.Candidate.Short()))
	return nil
}

func printFilterDetail(cmd *cobra.Command, f controller.FilterStatus, history []types.Version) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "filter     %s (position %d)\n", f.Name, f.Position)
	fmt.Fprintf(w, "stable     %s\n", orDash(string(f.Stable)))
	fmt.Fprintf(w, "candidate  %s\n", orDash(string(f.Candidate)))
	fmt.Fprintf(w, "rollout    by %s, %d%%, steps %v, step %d, paused %v\n", f.By, f.Percent, f.Steps, f.Step, f.Paused)
	if f.LastError != "" {
		fmt.Fprintf(w, "last error %s (%s)\n", f.LastError, f.ErrorAt.Format("2006-01-02 15:04:05"))
	}
	for _, b := range f.Bad {
		fmt.Fprintf(w, "bad        %s at %s: node %s: %s\n", b.Digest.Short(), b.At.Format("2006-01-02 15:04:05"), orDash(b.Node), b.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nADDED\tDIGEST\tSIZE\tVERSION\tSOURCE")
	for i := len(history) - 1; i >= 0; i-- {
		v := history[i]
		ver := "-"
		if v.Manifest != nil {
			ver = v.Manifest.Version
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", v.AddedAt.Format("2006-01-02 15:04:05"), v.Digest.Short(), v.Size, ver, v.Origin.Ref)
	}
	tw.Flush()
}

func versionsCell(v types.FilterVersions) string {
	if v.Stable == "" && v.Candidate == "" {
		return "-"
	}
	if v.Candidate == "" {
		return v.Stable.Short()
	}
	return fmt.Sprintf("%s+%s@%d%%", v.Stable.Short(), v.Candidate.Short(), v.CandidateShare/100)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
