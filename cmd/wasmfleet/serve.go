package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wasmfleet/wasmfleet/controlplane"
	"github.com/wasmfleet/wasmfleet/controlplane/config"
)

func serveCmd() *cobra.Command {
	var (
		configPath string
		flags      config.Config
		logLevel   string
		devLogs    bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane (no config needed: watches ./filters.d, serves xDS on 127.0.0.1:18000)",
		Long: `Runs the control plane: watches the module sources, admits modules, rolls them
out and serves xDS, the module server and the admin API until interrupted.
Flags override the config file's settings of the same name. --admin takes
host:port or a URL (http://host:port), as the clients' --admin does.`,
		Example: `  wasmfleet serve
  wasmfleet serve -c wasmfleet.yaml --dev-logs
  wasmfleet serve --watch-dir filters.d --admin http://127.0.0.1:18002`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, configPath, flags)
			if err != nil {
				return err
			}
			log, err := newLogger(logLevel, devLogs)
			if err != nil {
				return err
			}
			defer log.Sync()
			cp, err := controlplane.New(controlplane.Options{Config: cfg, ConfigPath: configPath, Log: log})
			if err != nil {
				return err
			}
			return cp.Start(cmd.Context())
		},
	}
	f := cmd.Flags()
	d := config.Default()
	f.StringVarP(&configPath, "config", "c", "", "YAML config file (default: the embedded default)")
	f.StringVar(&flags.WatchDir, "watch-dir", d.WatchDir, "directory of NAME.wasm modules (watch_dir)")
	f.StringVar(&flags.DataDir, "data-dir", d.DataDir, "where modules, history and rollout state are kept (data_dir)")
	f.StringVar(&flags.Listen.XDS, "xds", d.Listen.XDS, "xDS gRPC address (listen.xds)")
	f.StringVar(&flags.Listen.Modules, "modules", d.Listen.Modules, "module server address (listen.modules)")
	f.StringVar(&flags.Listen.Admin, "admin", d.Listen.Admin, "admin API address (listen.admin)")
	f.BoolVar(&flags.Listen.Insecure, "insecure", false, "allow xDS and the module server beyond loopback without TLS (listen.insecure; labs only)")
	f.StringVar((*string)(&flags.Mode), "mode", string(d.Mode), "managed (listeners, routes, clusters and filters) or ecds (filters only)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&devLogs, "dev-logs", false, "human-readable logs instead of JSON")
	return cmd
}

// loadConfig reads the file (or the default) and lays over it the flags the
// user set explicitly, then validates the result.
func loadConfig(cmd *cobra.Command, path string, flags config.Config) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return cfg, err
		}
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("watch-dir", &cfg.WatchDir, flags.WatchDir)
	set("data-dir", &cfg.DataDir, flags.DataDir)
	set("xds", &cfg.Listen.XDS, flags.Listen.XDS)
	set("modules", &cfg.Listen.Modules, flags.Listen.Modules)
	if cmd.Flags().Changed("admin") {
		addr, err := listenAddr(flags.Listen.Admin)
		if err != nil {
			return cfg, withCode(exitUsage, err)
		}
		cfg.Listen.Admin = addr
	}
	set("mode", (*string)(&cfg.Mode), string(flags.Mode))
	if cmd.Flags().Changed("insecure") {
		cfg.Listen.Insecure = flags.Listen.Insecure
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// listenAddr takes --admin as the clients do, host:port or an http URL
// without a path, and returns the host:port to listen on.
func listenAddr(s string) (string, error) {
	if !strings.Contains(s, "://") {
		return s, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return "", fmt.Errorf("--admin %q: want host:port or http://host:port (the admin API serves plain HTTP)", s)
	}
	return u.Host, nil
}

func newLogger(level string, dev bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	if dev {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	// Errors here are operational (a rejected module, a NACK): the message
	// says what happened; a Go stack trace would only bury it.
	zc.DisableStacktrace = true
	return zc.Build()
}
