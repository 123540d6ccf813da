// Package filterbuild turns a filter directory (a Go main package on top of
// sdk/ with a manifest.json) into what wasmfleet distributes: NAME.wasm and
// NAME.manifest.json side by side, the manifest validated, both written
// atomically so a watched directory never sees half a file. It is what
// `wasmfleet build` and `make filters` run.
package filterbuild
