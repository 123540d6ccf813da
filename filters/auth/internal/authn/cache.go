package authn

import (
	"container/list"
	"sync"

	"github.com/wasmfleet/wasmfleet/filters/auth/internal/jwt"
)

// MaxCachedTokenBytes bounds the tokens the cache keeps, and so its memory:
// at most cache_entries x 4 KiB. Longer tokens are verified every time.
const MaxCachedTokenBytes = 4 << 10

// tokenCache remembers tokens that verified until they expire, so that a
// client repeating its token costs a map lookup instead of a signature
// check. It is an LRU bounded to max entries. Safe for concurrent use (a
// proxy-wasm VM is single-threaded, native tests are not).
//
// The key is the token itself: Go's map hashes it with the runtime's seeded
// hash and a hit compares the whole string, so no other token can collide
// with a cached one. A SHA-256 of the token would be just as safe, but costs
// ~20 us per 700-byte token inside a wasm guest (no SHA instructions), more
// than the rest of a cached request.
type tokenCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element
	order   *list.List // front: most recently used
}

// verified is what a token proved: the headers to forward and until when.
type verified struct {
	token   string
	expiry  int64 // Unix nanoseconds
	headers [][2]string
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[string]*list.Element), order: list.New()}
}

// get returns the entry for key. An expired entry is dropped and reported
// with expired = true, so that expiry is enforced on cache hits too.
func (c *tokenCache) get(token string, now, skew int64) (v *verified, expired bool) {
	if c.max == 0 || len(token) > MaxCachedTokenBytes {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[token]
	if !ok {
		return nil, false
	}
	v = el.Value.(*verified)
	if !jwt.Before(now, v.expiry, skew) {
		c.order.Remove(el)
		delete(c.entries, token)
		return nil, true
	}
	c.order.MoveToFront(el)
	return v, false
}

// put adds v, evicting the least recently used entry when full.
func (c *tokenCache) put(v *verified) {
	if c.max == 0 || len(v.token) > MaxCachedTokenBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[v.token]; ok {
		el.Value = v
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*verified).token)
	}
	c.entries[v.token] = c.order.PushFront(v)
}
