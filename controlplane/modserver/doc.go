// Package modserver serves module bytes by digest to Envoy, which fetches a
// filter's remote code from GET /modules/sha256/<hex> and checks the sha256
// itself.
//
// A digest names exactly one content, forever, so responses are immutable:
// a strong ETag of the digest, a year of caching, conditional and range
// requests. The bytes come from the store; this package only needs to know
// where the store keeps a digest's file.
package modserver
