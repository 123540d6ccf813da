// Package admission decides whether a module may reach the fleet. Every
// module a source produces passes through Admit before the store records it;
// a rejected module changes nothing and the error names the file and the
// reason, so the person who dropped it in filters.d or pushed the tag can fix
// it without reading an Envoy log.
//
// The checks run cheapest first and stop at the first failure: size, digest,
// structure (package abi), the proxy-wasm ABI exports, the imports (which
// Envoy the module needs, refusing imports no Envoy provides), an optional
// signature, and a trial run in wasmfleet's own proxy-wasm host (package
// wasmhost): instantiate, proxy_on_vm_start, proxy_on_configure with the
// filter's configuration, under time and memory limits. A module that passes
// loads in Envoy the same way, so a rollout cannot fail on a bad module.
//
// Results, admitted or not, are cached by module digest and the digest of
// everything else that decides the outcome (filter name, root id, plugin
// configuration, signature), so a restart of a source or a repeated event
// costs a hash, not a trial run.
package admission
