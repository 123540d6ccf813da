// Package wasmhost is wasmfleet's own proxy-wasm host (ABI 0.2.x, as
// proxy-wasm-cpp-host and Envoy implement it) on wazero.
//
// Why not the SDK's proxytest emulator: it is process-global, so one
// process can drive one module at a time. wasmfleet needs many at once:
// admission's trial run (instantiate, proxy_on_vm_start, proxy_on_configure
// under a deadline and a memory limit, with a clear error) runs beside the
// e2e Envoy stand-in, which proxies real HTTP through chains of filters on
// several simulated nodes in one process. Here every piece of state lives
// in a Plugin (one VM); nothing is global.
//
//	Runtime (wazero runtime + WASI + "env" host module)
//	  └─ Module (compiled code)            Compile: safe for concurrent use
//	       └─ Plugin (instance + root context)   NewPlugin: start + configure
//	            └─ HTTPStream (HTTP context)     headers, body, trailers, Done
//
// Host functions find their Plugin through the context of the call into
// the guest, and write results into guest memory through the guest's
// proxy_on_memory_allocate (re-entering the guest from the host call).
// SharedData and Metrics are per simulated node: give the plugins of one
// node the same ones.
//
// # Where this host simplifies Envoy
//
//   - One VM per Plugin and one root context per VM. Envoy shares a VM
//     between plugins whose vm_id, vm_config.configuration and code hash to
//     the same key (proxy-wasm-cpp-host src/wasm.cc, makeVmKey, used by
//     Envoy's source/extensions/common/wasm/wasm.cc createWasm) and runs
//     one VM per worker thread; here each Plugin is its own VM, and its
//     calls are serialised by a mutex (use one Plugin per worker for
//     parallelism).
//   - No dispatcher. RunTicks is each VM's tick timer, following Envoy's
//     (a period set restarts it; re-armed after each tick); or drive
//     proxy_on_tick yourself with Tick. Queue notifications
//     (proxy_on_queue_ready) are delivered after the callback that caused
//     them when the queue is the plugin's own, else at the next call into
//     the registering plugin (a tick is one).
//   - A stream the filter paused at its end stays paused after the host
//     method returns; AwaitRequest and AwaitResponse wait for the filter to
//     resume it (proxy_continue_stream), reply or reset it from a later
//     callback (a tick, a queue notification).
//   - HTTP callouts run synchronously inside proxy_http_call through the
//     HTTPCaller; the response is delivered (proxy_on_http_call_response)
//     right after the callback that made the call returns, and before the
//     host method that ran it returns. A stream the filter paused and then
//     resumed from the response reports ActionContinue. The guest sees
//     Envoy's order of events, but the VM is held for the callout's
//     duration (up to its timeout), where Envoy's worker serves other
//     streams meanwhile. See HTTPCaller.
//   - The host records, the caller acts: a local response
//     (LocalResponse; the callback's action becomes ActionPause, as Envoy
//     stops iteration), proxy_close_stream (WasReset), the filter's
//     action. Sending the local reply back through the chain, the
//     failure_policy, and buffer limits (Envoy's 413) are the caller's.
//   - Stream end is Done: proxy_on_done, proxy_on_log, proxy_on_delete in
//     one go (the order Envoy uses for a closing connection; an HTTP
//     stream's access-log phase may run proxy_on_log first).
//   - Bodies: a stream's body buffer stays readable for the whole stream
//     (Envoy exposes it during body callbacks); proxy_set_buffer_bytes
//     follows Envoy's rules (prepend, replace, append; BadArgument for an
//     edit in the middle). proxy_on_vm_start and proxy_on_configure read
//     their configuration as buffers 6 and 7; buffer 7 only during
//     proxy_on_configure, as in Envoy.
//   - Properties: plugin_name, plugin_root_id, plugin_vm_id; from the
//     stream: request.{path,url_path,query,host,scheme,method,headers[.name],
//     referer,useragent,id,time,duration,size,protocol},
//     response.{code,code_details,headers[.name],trailers[.name],size},
//     source.{address,port}, destination.{address,port}; xds.route_name and
//     xds.route_metadata[...] from StreamInfo.Route. Anything else
//     (node.*, other xds.*, connection.*, metadata) only when the caller put it
//     in PluginConfig.Properties or StreamInfo.Properties as a flat
//     "a.b.c" key; there are no CEL maps or protobuf messages, so asking
//     for a whole node or node.metadata is NotFound unless given. Integers,
//     times and durations are 8-byte little-endian as in Envoy.
//     proxy_set_property stores per stream and reads back by exact path.
//     x-request-id is not generated (the connection manager's job).
//   - Not hosted: TCP filter callbacks, gRPC calls (Unimplemented),
//     foreign functions other than clear_route_cache (NotFound),
//     proxy_validate_configuration, the ABI
//     0.1.0 callbacks (a module must export proxy_abi_version_0_2_0 or
//     _0_2_1). proxy_done is accepted; Close does not wait for it.
//     proxy_clear_route_cache (ABI 0.1.0) and the foreign function
//     clear_route_cache call StreamInfo.ClearRouteCache (the caller picks
//     the route again). proxy_get_status reports the
//     last callout's outcome only. There is no proxy_get_monotonic_time
//     (Envoy has none); WASI's monotonic clock is the real one.
//   - Metrics keep the guest's names (Envoy prefixes them and extracts
//     tags); histograms keep count, sum, min and max.
//   - WASI is wazero's full wasi_snapshot_preview1, more than Envoy offers
//     (admission checks imports separately), also under the old name
//     wasi_unstable, as in proxy-wasm-cpp-host. Every import
//     controlplane/abi accepts is provided (its tests check, through
//     Runtime.Provides), including Emscripten's env.pthread_equal and
//     env.emscripten_notify_memory_growth. stdout and stderr go to the
//     plugin's log at info and error level, one call per line (Envoy logs
//     each write); a Go traceback is logged but kept out of error messages.
//   - ErrMemoryLimit is inferred: a guest that fails with its memory within
//     4 MiB of the limit most likely had a memory.grow refused.
//   - Any trap, guest exit or deadline fails the VM for good (ErrVMFailed
//     afterwards), as Envoy fails a VM; a fresh Plugin is the way back.
//   - A deadline on a guest callback is ours, not Envoy's: Envoy has no
//     per-callback timeout for Wasm (a guest that never returns stalls its
//     worker). Admission needs one, to stop a trial run that loops; wazero
//     pays for it on every call into the guest, so a runtime created with
//     Config.Uninterruptible does without, as Envoy does, for traffic.
//
// # Cost of a call
//
// Per request the host calls into the guest five times or more (context
// create, headers, done, log, delete), and every host call that returns
// data re-enters the guest once more to allocate. So the path is kept free
// of per-call allocation: guest functions are looked up once per Plugin,
// arguments go through a reused stack, a stream's context carries its
// Plugin already, results are written straight into the memory the guest
// allocated, and log lines nobody reads are not copied.
package wasmhost
