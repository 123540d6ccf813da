package admission

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// cacheKey is (module digest, settings digest): the settings digest covers
// everything besides the bytes that decides the outcome.
type cacheKey struct {
	module   types.Digest
	settings [sha256.Size]byte
}

func keyOf(module types.Digest, req Request) cacheKey {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte(req.Filter))
	field([]byte(req.Settings.RootID))
	plugin, _ := req.Settings.PluginConfiguration()
	field(plugin)
	field(req.Settings.VMConfiguration())
	for _, k := range slices.Sorted(maps.Keys(req.Settings.VM.Env)) {
		field([]byte(k))
		field([]byte(req.Settings.VM.Env[k]))
	}
	field(req.Signature)
	if req.Settings.RequireSignature {
		field([]byte{1})
	} else {
		field(nil)
	}
	k := cacheKey{module: module}
	h.Sum(k.settings[:0])
	return k
}

// lru is a bounded map that drops the least recently used entry when full.
// It is not safe for concurrent use; the admitter's mutex guards it.
type lru struct {
	max   int
	order *list.List // front: most recently used; values are *lruEntry
	index map[cacheKey]*list.Element
}

type lruEntry struct {
	key cacheKey
	res result
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), index: map[cacheKey]*list.Element{}}
}

func (c *lru) get(k cacheKey) (result, bool) {
	e, ok := c.index[k]
	if !ok {
		return result{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).res, true
}

func (c *lru) put(k cacheKey, res result) {
	if e, ok := c.index[k]; ok {
		e.Value.(*lruEntry).res = res
		c.order.MoveToFront(e)
		return
	}
	c.index[k] = c.order.PushFront(&lruEntry{key: k, res: res})
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.index, oldest.Value.(*lruEntry).key)
	}
}
