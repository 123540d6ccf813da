// Command wasmfleet is the whole product in one binary: the control plane
// (serve), offline checks (validate), filter builds (build), registry pushes
// (push), lab certificates (certs), new filters (new), and clients of the
// admin API (status, rollout, version).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, so that scripts and CI can tell failures apart without
// parsing messages. exitCodesHelp documents them in --help.
const (
	exitOK = 0
	// exitFailed: anything not below (a module rejected, a file missing).
	exitFailed = 1
	// exitUsage: a wrong flag, argument or command.
	exitUsage = 2
	// exitUnreachable: no answer from the admin API.
	exitUnreachable = 3
	// exitRefused: the admin API answered with an error (wrong token,
	// unknown filter, a command that makes no sense now).
	exitRefused = 4
	// exitRolloutFailed: `rollout status --wait` saw the version rolled
	// back (or replaced) instead of promoted.
	exitRolloutFailed = 5
	// exitTimeout: `rollout status --wait --timeout` ran out of time.
	exitTimeout = 6
)

const exitCodesHelp = `
Exit codes:
  0  success (for rollout status --wait: the version was promoted)
  1  failure (a module rejected, a build failed, a file missing)
  2  usage: a wrong command, flag or argument
  3  the admin API could not be reached
  4  the admin API refused the request (token, unknown filter, command)
  5  rollout status --wait: the version was rolled back or replaced
  6  rollout status --wait: --timeout passed first`

// errSilent is returned by commands that already printed why they failed.
var errSilent = errors.New("")

// codedError carries the exit code for its error.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode gives err the exit code code (err nil stays nil).
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code. An error said
// by a command is printed once, as it is: each layer below adds only what
// the message lacks.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage // what cobra refuses before a command runs
	var coded *codedError
	if errors.As(err, &coded) {
		code = coded.code
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintln(stderr, "wasmfleet:", err)
	}
	if code == exitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "wasmfleet",
		Short: "Distribute proxy-wasm filters to a fleet of Envoy proxies over xDS",
		Long: `wasmfleet distributes proxy-wasm filter modules to a fleet of Envoys over xDS
and rolls new versions out to a share of the fleet, rolling them back on failure.

The clients of a running control plane (status, rollout, version) find it with
--admin or $WASMFLEET_ADMIN (host:port or a URL; default ` + defaultAdmin + `)
and send --token or $WASMFLEET_ADMIN_TOKEN when the control plane has an
admin_token. Every command that prints data takes -o table|json|yaml.
` + exitCodesHelp,
		Example: `  wasmfleet serve --watch-dir filters.d
  wasmfleet status -o yaml
  WASMFLEET_ADMIN=cp.internal:18002 wasmfleet rollout status auth --wait --timeout 10m`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), validateCmd(), buildCmd(), pushCmd(), statusCmd(), rolloutCmd(), versionCmd(), certsCmd(), newCmd())
	markFailures(root)
	return root
}

// groupRun is the RunE of a command that only groups subcommands
// (rollout): without it cobra prints the help for `rollout bogus` and exits
// 0, where a mistyped subcommand is a usage error.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only when it looks for a command itself
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return withCode(exitUsage, errors.New(msg))
}

// markFailures gives every error a command's RunE returns exit code
// exitFailed unless it carries its own, so that run can tell them from
// the errors cobra returns before any command runs, which are all usage
// errors (unknown command or flag, wrong number of arguments).
func markFailures(cmd *cobra.Command) {
	if runE := cmd.RunE; runE != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := runE(cmd, args)
			var coded *codedError
			if err != nil && !errors.As(err, &coded) {
				return withCode(exitFailed, err)
			}
			return err
		}
	}
	for _, sub := range cmd.Commands() {
		markFailures(sub)
	}
}
