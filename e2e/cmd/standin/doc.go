// Command standin runs one stand-in data-plane node by hand, against a
// control plane's ADS address, and prints its listeners and xDS status as
// they change, and its filters' log lines (-log-level). -echo answers the
// default config's upstream cluster itself; -admin serves the filters'
// metrics at /stats/prometheus, as Envoy's admin does. Stop it with Ctrl-C.
//
//	go run ./e2e/cmd/standin -xds 127.0.0.1:18000 -node node-1 -listen ingress=127.0.0.1:10000 -echo -admin 127.0.0.1:9901
package main
