// Package authn decides whether a request may pass the auth filter: it holds
// the filter's configuration (with its validation), API key checks, JWT
// verification through package jwt, the bypass rules and a bounded cache of
// verified tokens.
//
// It knows nothing of proxy-wasm: Check takes the request headers (with the
// ":method" and ":path" pseudo-headers, as Envoy passes them) and the time,
// and returns a Decision that the filter's main package carries out with
// host calls. That keeps every rule testable natively, and lets the tests
// run the same cases against the compiled module.
package authn
