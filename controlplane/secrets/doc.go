// Package secrets lets a filter's plugin configuration name a secret instead
// of holding it: a value written as
//
//	{"$secret": {"file": "/etc/wasmfleet/hs256.key"}}
//	{"$secret": {"env": "AUTH_HS256_KEY"}}
//
// (in YAML, `k: {$secret: {file: /etc/wasmfleet/hs256.key}}`) is replaced by
// the file's content or the environment variable's value of the control
// plane, as a JSON string, when the controller admits settings. Envoy and
// admission's trial run get the resolved configuration; everything the
// control plane stores, prints or serves keeps the reference. Resolved.Redact
// removes resolved values from text that might echo them (a guest's log
// lines, a NACK reason).
//
// A reference is an object whose one member is "$secret", whose value is an
// object with exactly one of "file" (an absolute path) or "env" (a variable
// name). Anything else holding a "$secret" member is an error, never passed
// on as it is; every other value, a plain string included, stays what it
// is. A file is read whole (at most MaxValueBytes), less one trailing line
// break, and must be UTF-8 text; a variable must be set. Neither may be
// empty. The configuration itself cannot be a reference.
package secrets
