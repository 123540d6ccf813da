// Package sdktest runs one table of cases against a filter twice: natively
// (the filter's Go code in the test binary, under the proxy-wasm SDK's host
// emulator, proxytest) and as its compiled .wasm module (the same emulator
// driving the module under wazero through proxytest.NewWasmVMContext). The
// native run gives readable stack traces; the wasm run catches what only the
// real target does differently (wasip1 runtime, memory, what the build
// actually exports). The module is built once per test binary (wasmtest)
// and instantiated once per package.
//
//	func TestTransform(t *testing.T) {
//		sdktest.Run(t, sdktest.Target{Package: "filters/transform", Native: filter.VMContext()}, cases)
//	}
//
// The emulator is process-global: one emulated host at a time, behind a
// lock inside the SDK. So cases run one after another, and tests that use
// sdktest must not call t.Parallel. A guest trap is reported as a test error
// and the module instance is replaced before the next case.
//
// Simplifications against Envoy: after a local response the stream ends
// (Envoy would also pass the local reply through the filter's response
// callbacks); a body is delivered in Case.Chunk-sized frames and, when the
// filter returns Pause, re-delivered accumulated as Envoy's buffering does.
//
// Quirks of the SDK's emulator that cases must not rely on: adding a header
// that already exists appends to its value instead of adding an entry, and
// removing a header removes only its first entry (Envoy removes all). Its
// wasm wrapper never calls proxy_on_delete, so a module's HTTP contexts are
// never freed and its memory grows with every stream: fine for tests, and
// the reason Bench's Wasm figures overstate the cost of a request (see
// hostbench for the figure under wasmfleet's own host).
package sdktest
