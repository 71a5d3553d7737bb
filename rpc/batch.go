package rpc

import (
	"context"
	"fmt"
)

// Call is one request of a Batch method. The handler completes it by setting
// Reply, or Err to fail it; Params and the Call itself are valid only until
// the handler returns.
type Call struct {
	Params []byte // the exact JSON bytes the client sent ("null" when absent)
	Reply  Reply
	Err    error
}

// BatchHandler completes every call in calls; see the package doc.
type BatchHandler func(ctx context.Context, calls []Call)

// RegisterBatch adds h under name as a Batch method. It panics on an empty
// name, a nil handler or a name registered twice: all programming errors.
func (r *Registry) RegisterBatch(name string, h BatchHandler) {
	if h == nil {
		panic(fmt.Sprintf("rpc: register %q with a nil batch handler", name))
	}
	r.add(name, entry{batch: h, mode: Batch})
}

// LookupBatch finds the Batch handler for name without allocating; ok is
// false when name is not a Batch method. Safe from any goroutine once
// registration is over.
func (r *Registry) LookupBatch(name []byte) (h BatchHandler, ok bool) {
	e, ok := r.m[string(name)]
	return e.batch, ok && e.mode == Batch
}
