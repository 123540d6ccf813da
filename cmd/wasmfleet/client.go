package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmfleet/wasmfleet/controlplane/admin"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
)

// adminClient talks to a running control plane's admin API.
type adminClient struct {
	base  string
	token string
	// output is "table" or "json", for the commands that print.
	output string
	http   *http.Client
}

// addAdminFlags adds --admin, --token and --output to a client command and
// its subcommands.
func addAdminFlags(cmd *cobra.Command, c *adminClient) {
	cmd.PersistentFlags().StringVar(&c.base, "admin", "http://"+config.DefaultAdminAddr, "admin API URL of the control plane")
	cmd.PersistentFlags().StringVar(&c.token, "token", os.Getenv("WASMFLEET_ADMIN_TOKEN"), "admin token (default $WASMFLEET_ADMIN_TOKEN)")
	cmd.PersistentFlags().StringVarP(&c.output, "output", "o", "table", "table or json")
	c.http = &http.Client{Timeout: 30 * time.Second}
}

// do sends a request and decodes a JSON answer into out; non-2xx answers
// become errors carrying the server's message.
func (c *adminClient) do(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is `wasmfleet serve` running?)", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e admin.Error
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("admin API: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// printJSON writes v indented, for -o json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
