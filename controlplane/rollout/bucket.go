package rollout

import (
	"crypto/sha256"
	"encoding/binary"
)

// Buckets is the size of the scale Bucket places nodes on. One bucket is one
// basis point, so a rollout percent p covers buckets [0, p*100).
const Buckets = 10000

// Bucket is a node's stable position for a filter, in 0..Buckets-1.
//
// It is the first 8 bytes of sha256(filter + "\x00" + node), big-endian,
// modulo Buckets. A cryptographic hash spreads near-identical node ids
// ("envoy-1", "envoy-2") evenly, and it is the same on every platform and Go
// version. Hashing the filter name in means each filter rolls out to a
// different slice of the fleet, so one unlucky node is not the canary for
// everything. Filter names cannot contain NUL, so the input is unambiguous.
//
// Do not change this function: which nodes run a candidate depends on it, and
// a change would move nodes between versions in the middle of a rollout.
func Bucket(node, filter string) int {
	var buf [128]byte
	b := append(buf[:0], filter...)
	b = append(b, 0)
	b = append(b, node...)
	sum := sha256.Sum256(b)
	return int(binary.BigEndian.Uint64(sum[:8]) % Buckets)
}
