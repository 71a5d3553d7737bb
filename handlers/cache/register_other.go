//go:build !linux

package cache

import "github.com/rpcd/rpcd/rpc"

// Register adds the cache methods to reg: each method of one Redis command as
// a Batch method, whose calls from one loop turn go to Redis in one write,
// and cache.mset as a Blocking method.
func (s *Store) Register(reg *rpc.Registry) {
	for i := range methods {
		m := &methods[i]
		if m.send != nil {
			reg.RegisterBatch(m.name, s.batchHandler(m))
		} else {
			reg.Register(m.name, rpc.Blocking, s.handler(m))
		}
	}
}

// pipe is an event loop's own Redis connection; only Linux workers drive one.
type pipe struct{}
