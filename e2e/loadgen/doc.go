// Package loadgen runs a fleet of lightweight xDS clients in one process to
// measure how fast a control plane converges: N nodes that subscribe like
// Envoy (clusters and listeners, then the routes and filter configs the
// listeners name), over state of the world or delta xDS (Config.Delta), ACK
// everything and record when each version of their filter configs (ECDS)
// arrived and how many bytes ECDS cost them. They run no Wasm and serve no HTTP, so
// thousands fit in one test process where thousands of stand-ins would not.
package loadgen
