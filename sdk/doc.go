// Package sdk is what a wasmfleet filter imports, on top of the proxy-wasm Go
// SDK (github.com/proxy-wasm/proxy-wasm-go-sdk). It exists so that a filter is
// a configuration struct plus an HttpContext, and so that every filter fails,
// logs and counts the same way:
//
//	Envoy ──proxy_on_configure──► sdk plugin context
//	                                 │ JSON ─► DecodeConfig: (*C).DecodeJSON(*Decoder), strict
//	                                 │         then C.Validate()
//	                                 │   bad: every problem logged at error level
//	                                 │        with its "field"; OnPluginStart
//	                                 │        fails, so Envoy NACKs the update
//	                                 ▼
//	                              Filter.Setup(*Plugin[C]) ─► HTTPFactory
//	Envoy ──proxy_on_context_create──► HTTPFactory(id) ─► your types.HttpContext
//
// A filter's main package registers itself from init:
//
//	var filter = sdk.Filter[Config]{Name: "transform", Default: DefaultConfig, Setup: setup}
//	func init() { sdk.Run(filter) }
//	func main() {}
//
// and its tests hand filter.VMContext() to sdktest, which runs the same table
// natively and against the compiled module.
//
// Logging (Logger) writes one JSON object per line through the host's log
// (proxy_log); Entry writes the same lines field by field into a reused
// buffer, for a line on every request; metrics (Metrics) name host metrics
// "<filter>_<name>"; the HTTP helpers cover header and query lookups
// (HeaderMap reads a whole header map in place) and JSON local responses;
// package jsonv parses and writes JSON without encoding/json.
//
// # Module size and speed
//
// A Go proxy-wasm module starts at about 2.27 MB (Go runtime plus the
// proxy-wasm SDK, whose fmt and time imports link os, syscall and godebug)
// against a 2.5 MB budget, and Go code in a wasm guest runs
// tens of times slower than natively. This package and the filters on it
// therefore avoid what costs much for little: fmt (the proxy-wasm SDK's
// Log*f and metric functions use it, so Metrics imports the metric calls
// itself), encoding/json and reflection (~1.2 MB; hence DecodeJSON and
// jsonv), strings.ToLower/EqualFold and bytes.TrimSpace (Unicode tables;
// see LowerASCII, EqualFoldASCII), strconv.Parse* (its error type brings
// quoting tables), encoding/hex (its error type formats with fmt; see
// ParseHex), crypto/* (the FIPS module, ~2 MB), errors.As in guest paths,
// and time.Time values (zone and formatting code; keep int64 nanoseconds).
// At run time the dearest thing is a host call that returns data (a
// header, a property, a body): the host re-enters the guest to allocate,
// several microseconds each, so read what you need once (one
// RequestHeaders map beats several RequestHeader values); resolve Metrics
// handles in Setup rather than by name per request (string hashing is slow
// without AES instructions). Next come allocations: the guest's runtime
// zeroes and later collects each one, so per-request code keeps its buffers
// (Entry) and views the host's bytes in place (HeaderMap).
//
// Guest code rules apply here as in filters: nothing in this package starts
// goroutines, sleeps or uses fmt/os, and nothing is safe for concurrent use
// because a proxy-wasm VM is single-threaded: Envoy runs one VM per worker
// thread and calls it from that thread only.
package sdk
