// Package abi says what a proxy-wasm module is without running it: it reads
// the WebAssembly binary format by hand (header, sections, the import and
// export sections), tells which proxy-wasm ABI version and callbacks a module
// exports, and which host — which Envoy — provides everything it imports.
//
// It exists so that admission can refuse a broken or incompatible module
// cheaply and with a precise reason before any runtime is involved, and so
// that the reason names the Envoy a module needs instead of a bare
// "instantiation failed" from a proxy at the edge of the fleet.
//
// Everything here is pure and safe for concurrent use. Inspect is written for
// hostile input: every length is bounds-checked against the bytes that are
// really there, so a lying length can neither panic nor make it allocate more
// than the input's own size.
package abi
