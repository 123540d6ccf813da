// Package xdscache is the xDS cache the server answers state-of-the-world
// and delta watches from. It keeps go-control-plane's snapshot cache
// semantics (per-node snapshots, a response whenever a watch's version
// differs from the snapshot's, ADS responses in type order, names checked
// in ADS mode; for delta, per-resource versions, only what changed,
// removals, initial_resource_versions, the first wildcard request always
// answered; and, ours, the first request of a reconnect always answered, so
// that its ACK names the version the node runs, and after a NACK what the
// rejected response carried or removed counted as not done, so that it is
// sent again at the snapshot's versions, as state of the world does:
// go-control-plane takes a delta response as held by the node once sent,
// Envoy only once applied, see nack.go) and changes three costs that grow
// with the fleet:
//
//   - Encoding. go-control-plane marshals every resource again for every
//     response, so a 2.4 MB inline module is copied once per node (for delta
//     it also hashes it again per response). Here each resource of a
//     snapshot is encoded once, and every response that carries it, state of
//     the world or delta, shares that encoding (the controller's builder
//     hands equal nodes the same snapshot).
//   - Memory in flight. A large response (inline modules) holds a slot of a
//     push window from the moment it is handed to a stream until the node
//     answers it (ACK or NACK), its stream ends, or a hold timeout passes;
//     responses beyond the window wait in a queue and are built from the
//     node's latest snapshot when a slot frees. Peak memory is then about
//     window x response size, not nodes x response size. Streams never wait
//     for the window: the queue is the cache's, so a node's requests (its
//     ACKs included) are handled while its response waits.
//   - Bytes per change. A state-of-the-world response for a type other than
//     listeners and clusters may leave out resources the node already has
//     (the xDS spec's "Grouping Resources into Responses"; Envoy keeps them:
//     GrpcMuxImpl::onDiscoveryResponse in
//     source/extensions/config_subscription/grpc/grpc_mux_impl.cc calls a
//     named watch's onConfigUpdate only with the resources found for it),
//     so a response carries only the resources whose encoding the node was
//     not sent yet: changing one filter of three sends one module. After a
//     NACK the response is complete again. Delta does this by design.
//
// A delta resource's version is the snapshot's version map entry when it
// has one: the builder puts there what the node runs (the routes' chain, a
// slot's config key), so that the versions a reconnecting node reports in
// initial_resource_versions tell the sequencing stage what it runs. (go-
// control-plane's own delta responses carry a hash of the resource instead,
// whatever the version map says.) Without one, it is the sha256 of the
// encoding, as go-control-plane computes it.
//
// Fetch and status are go-control-plane's snapshot cache's.
package xdscache
