package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// defaultPollInterval is how often `rollout status --wait` asks: a step
// lasts minutes, a promotion after the last ACK well under a second.
const defaultPollInterval = 2 * time.Second

func rolloutStatusCmd(c *adminClient, out *outputFormat) *cobra.Command {
	var (
		wait     bool
		timeout  time.Duration
		interval time.Duration
		digest   string
	)
	cmd := &cobra.Command{
		Use:   "status FILTER",
		Short: "A filter's versions, rollout, bad versions and history; --wait blocks until the rollout ends",
		Long: `Shows a filter's stable and candidate versions, its rollout (percent, step,
when the next step is due, how many nodes acked the candidate), bad
versions, admitted versions and what operators did (newest first).

With --wait it blocks until the candidate rolling out now (or the version
--digest names, once it is admitted) is promoted to stable, exiting 0, or is
rolled back or replaced by a newer version, exiting 5; with --timeout, it
gives up after that long with exit code 6. Progress goes to stderr, the final
state to stdout in the -o format. With nothing rolling out and no --digest it
returns at once. For CI: push or copy the module, then wait for its digest.
` + exitCodesHelp,
		Example: `  wasmfleet rollout status auth
  wasmfleet rollout status auth -o yaml
  # in CI, after copying bin/filters/auth.wasm into the watched directory:
  wasmfleet rollout status auth --wait --timeout 15m --digest "$(sha256sum bin/filters/auth.wasm | cut -c1-12)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (timeout != 0 || digest != "" || cmd.Flags().Changed("interval")) && !wait {
				return withCode(exitUsage, errors.New("--timeout, --interval and --digest go with --wait"))
			}
			if interval <= 0 {
				return withCode(exitUsage, fmt.Errorf("--interval %v: want more than 0", interval))
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			r, err := c.filterReport(ctx, args[0])
			if wait && (err == nil || digest != "" && errors.Is(err, errUnknownFilter)) {
				// With --digest, a filter whose first version is still on its
				// way is not unknown for long.
				r, err = c.waitRollout(ctx, cmd.ErrOrStderr(), args[0], r, digest, interval)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				state := "no version admitted"
				switch {
				case r.Filter.Candidate != "":
					state = rolloutCell(r.Filter)
				case r.Filter.Name != "":
					state = filterState(r.Filter) + ", stable " + orDash(r.Filter.Stable.Short())
				}
				err = withCode(exitTimeout, fmt.Errorf("rollout of %s: not over after --timeout %v: %s", args[0], timeout, state))
			}
			if r.Filter.Name != "" {
				if perr := out.print(cmd.OutOrStdout(), r, func(w io.Writer) error { return printFilterDetail(w, r) }); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait", false, "block until the rollout is promoted (exit 0) or rolled back (exit 5)")
	f.DurationVar(&timeout, "timeout", 0, "with --wait: give up after this long (exit 6); 0 waits as long as it takes")
	f.DurationVar(&interval, "interval", defaultPollInterval, "with --wait: how often to ask the control plane")
	f.StringVar(&digest, "digest", "", "with --wait: the version to wait for (a digest or a prefix of at least 4 hex characters), even before it is admitted")
	return cmd
}

// errUnknownFilter is filterReport's error for a filter the control plane
// does not know (yet: it knows a filter once a version was admitted).
var errUnknownFilter = errors.New("unknown filter")

// filterReport reads the status and the history of filter.
func (c *adminClient) filterReport(ctx context.Context, filter string) (filterReport, error) {
	var st api.Status
	if err := c.do(ctx, "GET", "/status", nil, &st); err != nil {
		return filterReport{}, err
	}
	i := slices.IndexFunc(st.Filters, func(f api.Filter) bool { return f.Name == filter })
	if i < 0 {
		return filterReport{}, withCode(exitRefused, fmt.Errorf("filter %s: %w", filter, errUnknownFilter))
	}
	r := filterReport{Filter: st.Filters[i], Nodes: len(st.Nodes), CandidateNodes: []string{}}
	var h api.History
	if err := c.do(ctx, "GET", "/filters/"+url.PathEscape(filter)+"/history", nil, &h); err != nil {
		return r, err
	}
	r.Versions, r.Actions = h.Versions, h.Actions
	if cand := r.Filter.Candidate; cand != "" {
		for _, n := range st.Nodes {
			if slices.ContainsFunc(n.Filters, func(f api.NodeFilter) bool {
				return f.Filter == filter && f.Acked.Candidate == cand
			}) {
				r.CandidateNodes = append(r.CandidateNodes, n.ID)
			}
		}
	}
	return r, nil
}

// waitRollout polls until the version it waits for (want, a digest prefix,
// or else the candidate in r) is promoted or out of the rollout, and returns
// the filter as it was last seen. With want set, r may be empty: filter is
// not known yet.
func (c *adminClient) waitRollout(ctx context.Context, progress io.Writer, filter string, r filterReport, want string, interval time.Duration) (filterReport, error) {
	var target types.Digest
	if want == "" {
		if target = r.Filter.Candidate; target == "" {
			fmt.Fprintf(progress, "%s: nothing rolling out; stable %s\n", r.Filter.Name, orDash(r.Filter.Stable.Short()))
			return r, nil
		}
	}
	last := ""
	for {
		f := r.Filter
		if target == "" {
			known := []types.Digest{f.Stable, f.Candidate}
			for _, b := range f.Bad {
				known = append(known, b.Digest)
			}
			d, err := api.ResolveDigest(want, known)
			switch {
			case errors.Is(err, api.ErrUnknownDigest):
				// Not admitted yet: keep waiting for it.
			case err != nil:
				return r, withCode(exitUsage, fmt.Errorf("--digest %w", err))
			default:
				target = d
			}
		}
		if target != "" {
			if done, err := outcome(f, target); done {
				return r, err
			}
		}
		line := fmt.Sprintf("%s %s: waiting for it to be admitted", filter, want)
		if target != "" {
			line = fmt.Sprintf("%s %s: %s, candidate acked by %d of %d nodes", f.Name, target.Short(), rolloutCell(f), len(r.CandidateNodes), r.Nodes)
			if f.Paused {
				line += ", paused"
			}
		}
		if line != last {
			fmt.Fprintln(progress, line)
			last = line
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(interval):
		}
		next, err := c.filterReport(ctx, filter)
		switch {
		case want != "" && errors.Is(err, errUnknownFilter):
			// Still unknown: keep waiting for its first version.
		case err != nil:
			return r, err
		default:
			r = next
		}
	}
}

// outcome says whether the rollout of target is over, and if so the error
// (nil when target was promoted) that gives the exit code.
func outcome(f api.Filter, target types.Digest) (bool, error) {
	switch {
	case f.Stable == target:
		return true, nil
	case f.Candidate == target:
		return false, nil
	}
	for _, b := range f.Bad {
		if b.Digest == target {
			return true, withCode(exitRolloutFailed, fmt.Errorf("%s %s rolled back at %s: %s", f.Name, target.Short(), b.At.Local().Format(time.DateTime), b.Reason))
		}
	}
	if f.Candidate != "" {
		return true, withCode(exitRolloutFailed, fmt.Errorf("%s %s replaced by a newer candidate, %s", f.Name, target.Short(), f.Candidate.Short()))
	}
	return true, withCode(exitRolloutFailed, fmt.Errorf("%s %s is no longer rolling out and is not stable (stable is %s)", f.Name, target.Short(), orDash(f.Stable.Short())))
}
