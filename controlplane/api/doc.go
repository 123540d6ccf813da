// Package api holds the wire types of the admin API, version 1 (served
// under Prefix): what `wasmfleet status`, `rollout` and `version` decode,
// and what any other client of the API may rely on.
//
// These types exist so that the JSON a client sees is a contract of its own
// rather than whatever internal structs happen to look like today: fields
// are snake_case, times are RFC 3339 (UTC), durations are strings in Go's
// notation ("1.5s"), digests are 64 lower-case hex characters. A change an
// existing client could trip over (a field renamed, removed, or meaning
// something else) belongs in a new version, not here. The admin package
// converts the control plane's state into these types; nothing in the
// control plane uses them otherwise.
package api
