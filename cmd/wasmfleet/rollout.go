package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
)

func rolloutCmd() *cobra.Command {
	var (
		c   adminClient
		out outputFormat
	)
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Inspect and steer rollouts on a running control plane",
		Long: `Inspect a filter's rollout, wait for it to end, or steer it: promote the
candidate, pause or resume its steps, roll it back, or allow a rolled-back
version again. Each command is recorded in the filter's history with who
asked (--actor, by default $USER@hostname) and why (--reason); rollout
status shows it. A command the rollout's state does not allow (pause with
no candidate) is refused with exit code 4.
` + exitCodesHelp,
		Example: `  wasmfleet rollout status auth
  wasmfleet rollout pause auth
  wasmfleet rollout rollback auth --reason "p99 latency doubled"
  wasmfleet rollout clear-bad auth 3f2a9c1b`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	addAdminFlags(cmd, &c)
	addOutputFlag(cmd, &out)
	cmd.AddCommand(rolloutStatusCmd(&c, &out))

	for _, a := range []struct {
		action, short, example string
	}{
		{"promote", "Promote the candidate to stable on every node now", "wasmfleet rollout promote auth"},
		{"pause", "Hold the rollout at its current step", `wasmfleet rollout pause auth --reason "watching p99"`},
		{"resume", "Continue a paused rollout (the current step lasts a full interval from now)", "wasmfleet rollout resume auth"},
		{"rollback", "Drop the candidate and mark it bad: every node returns to stable", `wasmfleet rollout rollback auth --reason "5xx from the new version"`},
	} {
		var req api.CommandRequest
		sub := &cobra.Command{
			Use:     a.action + " FILTER",
			Short:   a.short,
			Example: "  " + a.example,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.command(cmd, &out, args[0], a.action, req)
			},
		}
		addCommandFlags(sub, &req)
		cmd.AddCommand(sub)
	}
	var clearReq api.CommandRequest
	clearBad := &cobra.Command{
		Use:   "clear-bad FILTER DIGEST",
		Short: "Allow a rolled-back version to be rolled out again",
		Long: `Clears the bad mark of a rolled-back version. If the filter's source still
holds that version it goes through admission again at once and becomes the
candidate; otherwise it does the next time its source offers it. DIGEST is
the whole sha256 or a prefix of at least 4 hex characters (the 12 that tables
show will do); a prefix that starts more than one version of the filter is
refused.`,
		Example: "  wasmfleet rollout clear-bad auth 3f2a9c1b0d4e --reason \"fixed upstream, not the filter\"",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			clearReq.Digest = args[1]
			return c.command(cmd, &out, args[0], "clear-bad", clearReq)
		},
	}
	addCommandFlags(clearBad, &clearReq)
	cmd.AddCommand(clearBad)

	var planConfig string
	plan := &cobra.Command{
		Use:   "plan --config FILE",
		Short: "Dry run: which nodes would change version if FILE were applied now",
		Long: `Sends FILE to the control plane, which plans its connected fleet under it and
answers with each node whose versions would change; nothing changes. In the
table, "candidate X" is a node on the candidate alone and "S+C@P%" one that
splits P% of its requests to the candidate.`,
		Example: "  wasmfleet rollout plan -c wasmfleet.yaml -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := os.ReadFile(planConfig)
			if err != nil {
				return err
			}
			var p api.Plan
			if err := c.do(cmd.Context(), "POST", "/rollout/plan", bytes.NewReader(body), &p); err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), p, func(w io.Writer) error { return printPlan(w, p) })
		},
	}
	plan.Flags().StringVarP(&planConfig, "config", "c", "wasmfleet.yaml", "the config file to compare with the running one")
	cmd.AddCommand(plan)
	return cmd
}

func printPlan(w io.Writer, p api.Plan) error {
	if len(p.Changes) == 0 {
		_, err := fmt.Fprintln(w, "no node would change")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tFILTER\tFROM\tTO")
	for _, ch := range p.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Node, ch.Filter, runningCell(ch.From), runningCell(ch.To))
	}
	return tw.Flush()
}

// addCommandFlags adds what every rollout command records in the filter's
// history with it: --reason and --actor.
func addCommandFlags(cmd *cobra.Command, req *api.CommandRequest) {
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the history")
	cmd.Flags().StringVar(&req.Actor, "actor", defaultActor(), "who asks, for the history")
}

// defaultActor names the person at this machine, as $USER@hostname (the
// account's name when $USER is unset; a part left out when unknown), which
// is what the history records unless --actor says otherwise: in CI, the
// pipeline's name is more use.
func defaultActor() string {
	name := cmp.Or(os.Getenv("USER"), os.Getenv("USERNAME"))
	if u, err := user.Current(); name == "" && err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	if name == "" || host == "" {
		return name + host
	}
	return name + "@" + host
}

// command posts an operator command and prints the filter as it left it.
func (c *adminClient) command(cmd *cobra.Command, out *outputFormat, filter, action string, req api.CommandRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var f api.Filter
	if err := c.do(cmd.Context(), "POST", "/rollout/"+url.PathEscape(filter)+"/"+action, bytes.NewReader(body), &f); err != nil {
		return err
	}
	return out.print(cmd.OutOrStdout(), f, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %s: stable %s, candidate %s\n", action, filter, orDash(f.Stable.Short()), orDash(f.Candidate.Short()))
		return err
	})
}

// filterReport is what `rollout status` prints with -o json or yaml: the
// filter, its admitted versions and operator actions (oldest first) and the
// nodes that acked its candidate.
type filterReport struct {
	Filter         api.Filter    `json:"filter"`
	Versions       []api.Version `json:"versions"`
	Actions        []api.Action  `json:"actions"`
	CandidateNodes []string      `json:"candidate_nodes"`
	// Nodes is the number of connected nodes.
	Nodes int `json:"nodes"`
}

func printFilterDetail(w io.Writer, r filterReport) error {
	f := r.Filter
	fmt.Fprintf(w, "filter     %s (position %d)\n", f.Name, f.Position)
	fmt.Fprintf(w, "stable     %s\n", orDash(string(f.Stable)))
	fmt.Fprintf(w, "candidate  %s\n", orDash(string(f.Candidate)))
	state := filterState(f)
	if f.Candidate != "" {
		state = rolloutCell(f)
		if f.Paused {
			state += ", paused"
		}
		if !f.StepSince.IsZero() {
			state += ", since " + f.StepSince.Local().Format(time.DateTime)
		}
		state += fmt.Sprintf("; candidate acked by %d of %d nodes", len(r.CandidateNodes), r.Nodes)
	}
	fmt.Fprintf(w, "rollout    %s\n", state)
	if !f.NextStepAt.IsZero() {
		fmt.Fprintf(w, "next step  %s\n", f.NextStepAt.Local().Format(time.DateTime))
	}
	if f.LastError != "" {
		fmt.Fprintf(w, "last error %s (%s)\n", f.LastError, f.LastErrorAt.Local().Format(time.DateTime))
	}
	for _, b := range f.Bad {
		fmt.Fprintf(w, "bad        %s at %s: node %s: %s\n", b.Digest.Short(), b.At.Local().Format(time.DateTime), orDash(b.Node), b.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nADDED\tDIGEST\tSIZE\tVERSION\tSOURCE")
	for i := len(r.Versions) - 1; i >= 0; i-- {
		v := r.Versions[i]
		ver := "-"
		if v.Manifest != nil {
			ver = v.Manifest.Version
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", v.AddedAt.Local().Format(time.DateTime), v.Digest.Short(), v.Size, ver, v.Origin.Ref)
	}
	if err := tw.Flush(); err != nil || len(r.Actions) == 0 {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nAT\tACTION\tBY\tVERSION\tREASON")
	for i := len(r.Actions) - 1; i >= 0; i-- {
		a := r.Actions[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.At.Local().Format(time.DateTime), a.Action, orDash(a.Actor), orDash(a.Digest.Short()), orDash(a.Reason))
	}
	return tw.Flush()
}
