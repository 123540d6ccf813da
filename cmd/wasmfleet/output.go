package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// outputFormat is -o: how a command prints its data. table is for people;
// json and yaml print the api types (or, for commands that do not talk to
// the API, their own snake_case structs) for scripts.
type outputFormat struct {
	value string
	// legacyDir, set on build only, takes a value of -o that is no format:
	// -o was build's output directory before it meant the format on every
	// command, and Makefiles still say `build -o DIR`. legacyUsed records
	// it, for a deprecation warning.
	legacyDir  *string
	legacyUsed bool
}

func (o *outputFormat) String() string { return o.value }
func (o *outputFormat) Type() string   { return "table|json|yaml" }

// Set refuses anything but the three formats when the flag is parsed, so
// a typo is a usage error before any work is done, never a silent table.
func (o *outputFormat) Set(s string) error {
	switch s {
	case "table", "json", "yaml":
		o.value = s
		return nil
	}
	if o.legacyDir != nil {
		*o.legacyDir, o.legacyUsed = s, true
		return nil
	}
	return fmt.Errorf("want table, json or yaml")
}

// addOutputFlag adds -o to cmd, persistent so that subcommands have it too.
func addOutputFlag(cmd *cobra.Command, o *outputFormat) {
	o.value = "table"
	cmd.PersistentFlags().VarP(o, "output", "o", "output format: table, json or yaml")
}

// print writes v as JSON or YAML, or calls table for the table.
func (o *outputFormat) print(w io.Writer, v any, table func(io.Writer) error) error {
	switch o.value {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return table(w)
}
