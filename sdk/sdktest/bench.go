package sdktest

import (
	"io"
	"log"
	"syscall"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// benchHostRequests bounds how many requests one emulated host serves in a
// benchmark: the emulator keeps every stream and log line it has seen, so it
// is replaced (outside the timer) before it grows large.
const benchHostRequests = 2048

// Bench measures one request through the filter per iteration, in mode:
// create the HTTP context, request headers (and body), response headers
// (and body), stream done. The plugin starts once, outside the timer.
// In Wasm mode the module runs under proxytest's wazero runtime, which is
// wazero's default configuration: the optimizing compiler on amd64/arm64.
// The figure includes the host emulator's own work, which for Wasm is more
// than the filter's (see the package doc); compare modes with it, and use
// hostbench for the cost of a request in a real host.
func Bench(b *testing.B, target Target, mode Mode, c Case) {
	b.Helper()
	prev := log.Writer()
	log.SetOutput(io.Discard)
	defer log.SetOutput(prev)
	vm := vmFor(b, target, mode)

	var host proxytest.HostEmulator
	reset := func() {}
	defer func() { reset() }()
	start := func() {
		reset()
		host, reset = proxytest.NewHostEmulator(emulatorOption(vm, &c))
		host.StartVM()
		if host.StartPlugin() != types.OnPluginStartStatusOK {
			b.Fatalf("sdktest: %s: plugin did not start: %q", c.Name, host.GetErrorLogs())
		}
	}
	start()
	var r Result
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%benchHostRequests == 0 {
			b.StopTimer()
			start()
			b.StartTimer()
		}
		r = Result{}
		stream(host, &c, &r)
	}
	b.StopTimer()
	ReportCPU(b, cpu)
	if r.Local != nil && c.Want.Local == nil {
		b.Fatalf("sdktest: %s: unexpected local response %d", c.Name, r.Local.StatusCode)
	}
}

// BenchStartup measures what a host pays to load the filter's module:
// compile, instantiate (running _initialize), proxy_on_vm_start and
// proxy_on_configure with config, then closing the runtime.
func BenchStartup(b *testing.B, pkg, config string) {
	b.Helper()
	prev := log.Writer()
	log.SetOutput(io.Discard)
	defer log.SetOutput(prev)
	wasm := wasmtest.Module(b, pkg)
	b.SetBytes(int64(len(wasm)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vm, err := proxytest.NewWasmVMContext(wasm)
		if err != nil {
			b.Fatal(err)
		}
		host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(config)))
		host.StartVM()
		ok := host.StartPlugin()
		reset()
		if err := vm.Close(); err != nil {
			b.Fatal(err)
		}
		if ok != types.OnPluginStartStatusOK {
			b.Fatalf("sdktest: %s: plugin did not start", pkg)
		}
	}
}

// CPUTime is the process's user+system CPU time in nanoseconds (0 where the
// platform cannot tell).
func CPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ReportCPU reports the CPU time used since start (a CPUTime reading) per
// iteration as "cpu-ns/op": on a machine shared with other work, wall time
// per op measures the neighbours too. It includes the benchmark's own
// restarts and the garbage collector.
func ReportCPU(b *testing.B, start int64) {
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}
