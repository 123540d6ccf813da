// Package hostbench measures filters' compiled modules in wasmfleet's own
// proxy-wasm host (controlplane/wasmhost) on wazero's optimizing compiler,
// beside sdktest's figures from the proxy-wasm SDK's emulator. The two
// harnesses have different overheads (the emulator's wasm wrapper never
// frees a stream's guest context), so each benchmark set carries a
// baseline: a module that does
// almost nothing per request (internal/wasmtest/testdata/hello), and
// BenchmarkOp prices single building blocks (a host call that returns data,
// a log line, a JSON parse, a byte in a loop) through the ops guest in
// testdata/ops. Bench also reports CPU time per request, which is steadier
// than wall time on a machine shared with other work. BenchmarkFloor is
// the four per-request cases wasmfleet promises a floor for.
//
// The runtime is the one a proxy runs traffic on: wazero's compiler,
// wasmhost.Config.Uninterruptible (no deadline per guest call, as in
// Envoy). An interruptible runtime, which admission's trial run needs,
// costs several times more per request.
//
// It lives apart from sdktest so that filter tests do not depend on the
// host package.
package hostbench
