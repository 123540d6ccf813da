package envoyproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/wasmfleet/wasmfleet/e2e/dataplane"
)

// configDump is the part of Envoy's /config_dump (envoy.admin.v3.ConfigDump)
// the driver reads, decoded loosely so that unknown fields and Any payloads
// of any type pass.
type configDump struct {
	Configs []struct {
		Type        string `json:"@type"`
		VersionInfo string `json:"version_info"`
		// ClustersConfigDump
		DynamicActiveClusters  []dynamicResource `json:"dynamic_active_clusters"`
		DynamicWarmingClusters []dynamicResource `json:"dynamic_warming_clusters"`
		// ListenersConfigDump
		DynamicListeners []dynamicResource `json:"dynamic_listeners"`
		// RoutesConfigDump
		DynamicRouteConfigs []dynamicResource `json:"dynamic_route_configs"`
		// EcdsConfigDump
		EcdsFilters []struct {
			dynamicResource
			EcdsFilter struct {
				Name        string          `json:"name"`
				TypedConfig json.RawMessage `json:"typed_config"`
			} `json:"ecds_filter"`
		} `json:"ecds_filters"`
	} `json:"configs"`
}

// dynamicResource has the fields every dynamic resource entry shares; a
// listener keeps its version in active_state.
type dynamicResource struct {
	Name        string        `json:"name"`
	VersionInfo string        `json:"version_info"`
	ErrorState  *failureState `json:"error_state"`
	ActiveState *struct {
		VersionInfo string `json:"version_info"`
	} `json:"active_state"`
}

// failureState is envoy.admin.v3.UpdateFailureState.
type failureState struct {
	Details     string `json:"details"`
	VersionInfo string `json:"version_info"`
}

const adminPrefix = "type.googleapis.com/envoy.admin.v3."

// parseConfigDump reads versions and rejections out of /config_dump.
func parseConfigDump(b []byte) (dataplane.Status, error) {
	var cd configDump
	if err := json.Unmarshal(b, &cd); err != nil {
		return dataplane.Status{}, fmt.Errorf("envoyproc: config_dump: %w", err)
	}
	st := dataplane.Status{Types: map[string]dataplane.TypeStatus{}, Extensions: map[string]dataplane.ExtensionStatus{}}
	reject := func(typ string, rs []dynamicResource) {
		ts := st.Types[typ]
		for _, r := range rs {
			if r.ErrorState != nil && ts.Error == "" {
				ts.Error, ts.Rejected = r.ErrorState.Details, r.ErrorState.VersionInfo
			}
		}
		st.Types[typ] = ts
	}
	for _, c := range cd.Configs {
		switch strings.TrimPrefix(c.Type, adminPrefix) {
		case "ClustersConfigDump":
			st.Types[dataplane.ClusterType] = dataplane.TypeStatus{Version: c.VersionInfo}
			reject(dataplane.ClusterType, append(c.DynamicActiveClusters, c.DynamicWarmingClusters...))
		case "ListenersConfigDump":
			st.Types[dataplane.ListenerType] = dataplane.TypeStatus{Version: c.VersionInfo}
			reject(dataplane.ListenerType, c.DynamicListeners)
		case "RoutesConfigDump":
			// RDS versions are per route configuration; the type's version
			// is the one they share (wasmfleet sends them together).
			ts := dataplane.TypeStatus{}
			for _, r := range c.DynamicRouteConfigs {
				ts.Version = r.VersionInfo
			}
			st.Types[dataplane.RouteType] = ts
			reject(dataplane.RouteType, c.DynamicRouteConfigs)
		case "EcdsConfigDump":
			ts := dataplane.TypeStatus{}
			var rs []dynamicResource
			for _, f := range c.EcdsFilters {
				x := dataplane.ExtensionStatus{Version: f.VersionInfo}
				if f.ErrorState != nil {
					x.Error = f.ErrorState.Details
				}
				x.Type, x.Digest = typedConfigInfo(f.EcdsFilter.TypedConfig)
				st.Extensions[f.EcdsFilter.Name] = x
				ts.Version = f.VersionInfo
				rs = append(rs, f.dynamicResource)
			}
			st.Types[dataplane.ExtensionType] = ts
			reject(dataplane.ExtensionType, rs)
		}
	}
	return st, nil
}

// typedConfigInfo returns the @type of an ECDS config and, for Wasm with
// remote code, its sha256.
func typedConfigInfo(raw json.RawMessage) (typ, digest string) {
	var tc struct {
		Type   string `json:"@type"`
		Config struct {
			VMConfig struct {
				Code struct {
					Remote struct {
						Sha256 string `json:"sha256"`
					} `json:"remote"`
				} `json:"code"`
			} `json:"vm_config"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &tc) != nil {
		return "", ""
	}
	return tc.Type, tc.Config.VMConfig.Code.Remote.Sha256
}

// stats is Envoy's /stats text output: "name: value" per line. Histograms
// and text values are skipped.
type stats map[string]uint64

func parseStats(b []byte) stats {
	out := stats{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// sum adds every stat whose name has the prefix, contains part and ends
// with the suffix.
func (s stats) sum(prefix, part, suffix string) int {
	var n uint64
	for name, v := range s {
		if strings.HasPrefix(name, prefix) && strings.Contains(name, part) && strings.HasSuffix(name, suffix) {
			n += v
		}
	}
	return int(n)
}

// apply adds the counters /stats has to a status from /config_dump.
func (s stats) apply(st *dataplane.Status) {
	set := func(typ string, acks, nacks int) {
		ts := st.Types[typ]
		ts.Acks, ts.Nacks = acks, nacks
		st.Types[typ] = ts
	}
	set(dataplane.ClusterType, int(s["cluster_manager.cds.update_success"]), int(s["cluster_manager.cds.update_rejected"]))
	set(dataplane.ListenerType, int(s["listener_manager.lds.update_success"]), int(s["listener_manager.lds.update_rejected"]))
	// RDS counts per route config: http.<stat_prefix>.rds.<name>.*
	set(dataplane.RouteType, s.sum("http.", ".rds.", ".update_success"), s.sum("http.", ".rds.", ".update_rejected"))
	// ECDS per config: extension_config_discovery.<stat_prefix>.<name>.*
	set(dataplane.ExtensionType, s.sum("extension_config_discovery.", "", ".config_reload"), s.sum("extension_config_discovery.", "", ".config_fail"))
	// Each ADS stream is one gRPC request to the wasmfleet_xds cluster.
	st.Streams = int(s["cluster.wasmfleet_xds.upstream_rq_total"])
}

// drains counts listener modifications and removals (each drains).
func (s stats) drains() int {
	return int(s["listener_manager.listener_modified"] + s["listener_manager.listener_removed"])
}

// parseListeners reads /listeners?format=json: listener name -> address to
// dial (dataplane.DialAddr of the bound one).
func parseListeners(b []byte) (map[string]string, error) {
	var ls struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue uint32 `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("envoyproc: listeners: %w", err)
	}
	out := map[string]string{}
	for _, l := range ls.ListenerStatuses {
		sa := l.LocalAddress.SocketAddress
		out[l.Name] = dataplane.DialAddr(net.JoinHostPort(sa.Address, strconv.Itoa(int(sa.PortValue))))
	}
	return out, nil
}

// parseLogLine reads a Wasm log line from Envoy's default log format:
//
//	[2026-01-02 03:04:05.678][12][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log tagger tagger: message
//
// where the words between "wasm log" and the colon are the plugin name,
// root id and vm id, each present only when set (Envoy's log prefix). The
// plugin name is the first of them.
func parseLogLine(line string) (dataplane.LogLine, bool) {
	fields := make([]string, 0, 4)
	rest := line
	for range 4 {
		if !strings.HasPrefix(rest, "[") {
			return dataplane.LogLine{}, false
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return dataplane.LogLine{}, false
		}
		fields = append(fields, rest[1:end])
		rest = rest[end+1:]
	}
	if fields[3] != "wasm" {
		return dataplane.LogLine{}, false
	}
	_, msg, ok := strings.Cut(rest, "] wasm log")
	if !ok {
		return dataplane.LogLine{}, false
	}
	prefix, msg, ok := strings.Cut(msg, ": ")
	if !ok {
		return dataplane.LogLine{}, false
	}
	words := strings.Fields(prefix)
	l := dataplane.LogLine{Level: fields[2], Message: msg}
	if len(words) > 0 {
		l.Plugin = words[0]
	}
	return l, true
}
