// Package mtls is the control plane's side of mutual TLS on the xDS and
// module ports: a Reloader that serves the certificate, key and client CA
// bundle read from disk and re-read when the files change (rotation without
// a restart), and NodeIdentity, which binds an xDS node id to the identity
// in the client certificate (by default the SPIFFE URI SAN
// spiffe://TRUST-DOMAIN/node/ID).
//
// TLS proves which certificate a peer holds; NodeIdentity is what makes a
// node's certificate the only key to that node's resources and to the
// ACK/NACKs recorded under its name.
package mtls
