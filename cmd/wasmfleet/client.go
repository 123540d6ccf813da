package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/api"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
)

// defaultAdmin is where the clients look for the admin API when neither
// --admin nor $WASMFLEET_ADMIN says: where `serve` listens by default.
const defaultAdmin = config.DefaultAdminAddr

// requestTimeout bounds one call to the admin API; a plan of a large fleet
// is the slowest.
const requestTimeout = 30 * time.Second

// adminClient talks to a running control plane's admin API, in the wire
// types of package api.
type adminClient struct {
	// addr is --admin as typed (host:port or a URL), token --token; both
	// empty when not given, for the environment to say.
	addr  string
	token string
	http  *http.Client
}

// addAdminFlags adds --admin and --token to a client command and its
// subcommands. Their defaults come from the environment when a request is
// made, not into the flags' defaults, so that --help never prints a token.
func addAdminFlags(cmd *cobra.Command, c *adminClient) {
	cmd.PersistentFlags().StringVar(&c.addr, "admin", "", "admin API of the control plane, host:port or URL (default $WASMFLEET_ADMIN, else "+defaultAdmin+")")
	cmd.PersistentFlags().StringVar(&c.token, "token", "", "admin token (default $WASMFLEET_ADMIN_TOKEN)")
	c.http = &http.Client{Timeout: requestTimeout}
}

// orEnv is value, or else the environment variable env, or else def.
func orEnv(value, env, def string) string {
	if value != "" {
		return value
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// adminBase turns --admin into the URL the API paths are appended to:
// "127.0.0.1:18002" and "http://127.0.0.1:18002/" both mean
// http://127.0.0.1:18002, as `serve --admin` takes either.
func adminBase(addr string) (string, error) {
	s := addr
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", withCode(exitUsage, fmt.Errorf("--admin %q: want host:port or an http(s) URL", addr))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// do sends a request to the API (path below api.Prefix) and decodes a JSON
// answer into out. An admin API that does not answer is exitUnreachable;
// one that answers with an error is exitRefused, with its message as it is.
func (c *adminClient) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	base, err := adminBase(orEnv(c.addr, "WASMFLEET_ADMIN", defaultAdmin))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+api.Prefix+path, body)
	if err != nil {
		return err
	}
	if token := orEnv(c.token, "WASMFLEET_ADMIN_TOKEN", ""); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is said below, once
		}
		return withCode(exitUnreachable, fmt.Errorf("admin API at %s: %w (is `wasmfleet serve` running there? set --admin or $WASMFLEET_ADMIN)", base, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return withCode(exitUnreachable, fmt.Errorf("admin API at %s: %w", base, err))
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (set --token or $WASMFLEET_ADMIN_TOKEN)"
		}
		return withCode(exitRefused, errors.New(msg))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API at %s: %s answered what this client cannot read (%w): is it a wasmfleet of another API version?", base, path, err)
	}
	return nil
}
