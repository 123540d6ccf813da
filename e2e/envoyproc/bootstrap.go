package envoyproc

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"text/template"
)

// bootstrapTemplate is envoy/bootstrap.yaml (managed mode) with the node
// identity and the control plane's address filled in and the admin port
// left to the kernel: ADS over gRPC (cluster wasmfleet_xds, HTTP/2), LDS and
// CDS from ADS, admin on loopback.
var bootstrapTemplate = template.Must(template.New("bootstrap").Parse(`node:
  id: {{.NodeID | printf "%q"}}
  cluster: {{.Cluster | printf "%q"}}
dynamic_resources:
  ads_config:
    api_type: {{if .Delta}}DELTA_GRPC{{else}}GRPC{{end}}
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc:
        cluster_name: wasmfleet_xds
  lds_config:
    resource_api_version: V3
    ads: {}
  cds_config:
    resource_api_version: V3
    ads: {}
static_resources:
  clusters:
  - name: wasmfleet_xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: wasmfleet_xds
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: {{.XDSHost | printf "%q"}}
                port_value: {{.XDSPort}}
admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: 0
`))

type bootstrapData struct {
	NodeID, Cluster, XDSHost, XDSPort string
	Delta                             bool
}

// Bootstrap renders the bootstrap YAML for a node; delta picks delta xDS
// (api_type DELTA_GRPC) over state of the world.
func Bootstrap(nodeID, cluster, xdsAddr string, delta bool) ([]byte, error) {
	host, port, err := net.SplitHostPort(xdsAddr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return nil, fmt.Errorf("envoyproc: xds address %q: %w", xdsAddr, err)
	}
	var b bytes.Buffer
	if err := bootstrapTemplate.Execute(&b, bootstrapData{NodeID: nodeID, Cluster: cluster, XDSHost: host, XDSPort: port, Delta: delta}); err != nil {
		return nil, fmt.Errorf("envoyproc: bootstrap: %w", err)
	}
	return b.Bytes(), nil
}
