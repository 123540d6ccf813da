package wasmhost

import (
	"context"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// SharedData is the key-value store and the message queues that plugins
// reach through proxy_get/set_shared_data and the proxy_*_shared_queue
// calls. In Envoy both live per process and are namespaced by VM id; give
// the plugins of one simulated node one SharedData to get the same sharing.
// It is safe for concurrent use.
type SharedData struct {
	mu        sync.Mutex
	cas       uint32
	data      map[string]map[string]sharedValue // vm id -> key -> value
	queues    map[uint32]*sharedQueue
	tokens    map[[2]string]uint32 // (vm id, queue name) -> token
	nextToken uint32
}

type sharedValue struct {
	value []byte
	cas   uint32
}

type sharedQueue struct {
	items [][]byte
	// ready tells the registering plugin that an item arrived; nil once
	// that plugin closed.
	ready func(token uint32)
}

// NewSharedData returns an empty store.
func NewSharedData() *SharedData {
	return &SharedData{
		cas:       1,
		data:      map[string]map[string]sharedValue{},
		queues:    map[uint32]*sharedQueue{},
		tokens:    map[[2]string]uint32{},
		nextToken: 1,
	}
}

// Get returns the value of key in vmID's namespace and its CAS token.
func (s *SharedData) Get(vmID, key string) (value []byte, cas uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[vmID][key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), v.value...), v.cas, true
}

// set stores value unless cas is non-zero and differs from the current
// token of an existing key (Envoy: a missing key is stored whatever cas says).
func (s *SharedData) set(vmID, key string, value []byte, cas uint32) status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.data[vmID]
	if m == nil {
		m = map[string]sharedValue{}
		s.data[vmID] = m
	}
	if old, ok := m[key]; ok && cas != 0 && cas != old.cas {
		return statusCasMismatch
	}
	m[key] = sharedValue{value: append([]byte(nil), value...), cas: s.nextCAS()}
	return statusOK
}

func (s *SharedData) nextCAS() uint32 {
	c := s.cas
	s.cas++
	if s.cas == 0 { // 0 means "no CAS" on set, so it is never handed out
		s.cas++
	}
	return c
}

// register creates (or takes over) the queue (vmID, name); ready is called,
// outside the lock, for each item enqueued from then on.
func (s *SharedData) register(vmID, name string, ready func(uint32)) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{vmID, name}
	token, ok := s.tokens[key]
	if !ok {
		token = s.nextToken
		s.nextToken++
		s.tokens[key] = token
		s.queues[token] = &sharedQueue{}
	}
	s.queues[token].ready = ready // items already queued are kept, as in Envoy
	return token
}

func (s *SharedData) resolve(vmID, name string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	token, ok := s.tokens[[2]string{vmID, name}]
	return token, ok
}

func (s *SharedData) enqueue(token uint32, value []byte) status {
	s.mu.Lock()
	q, ok := s.queues[token]
	if !ok {
		s.mu.Unlock()
		return statusNotFound
	}
	q.items = append(q.items, append([]byte(nil), value...))
	ready := q.ready
	s.mu.Unlock()
	if ready != nil {
		ready(token)
	}
	return statusOK
}

func (s *SharedData) dequeue(token uint32) ([]byte, status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[token]
	if !ok {
		return nil, statusNotFound
	}
	if len(q.items) == 0 {
		return nil, statusEmpty
	}
	v := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return v, statusOK
}

// unregister stops notifications to a closed plugin; its queues and items
// stay, so a plugin that registers the same name later takes them over.
func (s *SharedData) unregister(tokens []uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		if q, ok := s.queues[t]; ok {
			q.ready = nil
		}
	}
}

// Host functions of shared data and queues.

func hostGetSharedData(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	key, ok := readString(mod, a[0], a[1])
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, cas, ok := p.cfg.Shared.Get(p.cfg.VMID, key)
	if !ok {
		return statusNotFound
	}
	if st := copyOut(ctx, p, mod, v, a[2], a[3]); st != statusOK {
		return st
	}
	return writeU32(mod, a[4], cas)
}

func hostSetSharedData(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	key, ok1 := readString(mod, a[0], a[1])
	value, ok2 := viewBytes(mod, a[2], a[3]) // set copies it
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return p.cfg.Shared.set(p.cfg.VMID, key, value, uint32(a[4]))
}

func hostRegisterSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	name, ok := readString(mod, a[0], a[1])
	if !ok {
		return statusInvalidMemoryAccess
	}
	token := p.cfg.Shared.register(p.cfg.VMID, name, p.notifyQueue)
	p.queues = append(p.queues, token)
	return writeU32(mod, a[2], token)
}

func hostResolveSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	vmID, ok1 := readString(mod, a[0], a[1])
	name, ok2 := readString(mod, a[2], a[3])
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	token, ok := p.cfg.Shared.resolve(vmID, name)
	if !ok {
		return statusNotFound
	}
	return writeU32(mod, a[4], token)
}

func hostEnqueueSharedQueue(_ context.Context, p *Plugin, mod api.Module, a []uint64) status {
	value, ok := viewBytes(mod, a[1], a[2]) // enqueue copies it
	if !ok {
		return statusInvalidMemoryAccess
	}
	return p.cfg.Shared.enqueue(uint32(a[0]), value)
}

func hostDequeueSharedQueue(ctx context.Context, p *Plugin, mod api.Module, a []uint64) status {
	v, st := p.cfg.Shared.dequeue(uint32(a[0]))
	if st != statusOK {
		return st
	}
	return copyOut(ctx, p, mod, v, a[1], a[2])
}
