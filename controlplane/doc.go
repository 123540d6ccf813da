// Package controlplane wires wasmfleet's pipeline into one runnable control
// plane. Each stage is its own package; this one only builds them, binds the
// listeners and runs them until the context ends.
//
//	filters.d/auth.wasm ─┐ source (fsnotify, debounced, hashed)
//	oci://reg/auth:1.2 ──┤ source/oci (tag -> digest)
//	                     ▼
//	               admission ── structure, ABI, imports, signature, trial run (wasmhost)
//	                     ▼
//	                  store ─── content-addressed modules, history, rollout state
//	                     ▼
//	               controller ── rollout.Plan (pure) -> snapshot.Builder per node
//	                     ▼
//	                  server ─── go-control-plane ADS (SotW + delta) ──► Envoy fleet
//	                     │                     ▲ ACK / NACK -> fleet -> rollback
//	               modserver ── /modules/sha256/<hex> ◄── Envoy fetches remote code
//	                  admin ─── /api/v1/status, rollout commands, /metrics
package controlplane
