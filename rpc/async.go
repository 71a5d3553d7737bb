package rpc

import (
	"fmt"
	"time"
)

// Events says what a descriptor watched on a Loop is ready for.
type Events uint8

const (
	// Readable: input to read, the peer's end of stream, or an error to collect.
	Readable Events = 1 << iota
	// Writable: room to write, a non-blocking connect finished, or an error.
	Writable
)

// Loop is the part of a worker's event loop an Async method may use. Its
// methods must be called on the loop goroutine only: from the AsyncHandler or
// from a callback the Loop runs.
type Loop interface {
	// Watch asks for f to run on the loop whenever fd is ready for one of
	// events, replacing an earlier watch of fd. f may be told of readiness
	// that a read or write then finds gone (EAGAIN), and of an error or
	// hang-up as both Readable and Writable.
	Watch(fd int, events Events, f func(ready Events)) error
	// Unwatch stops watching fd. Call it before closing fd.
	Unwatch(fd int) error
	// After runs f on the loop once d has passed, by the loop's coarse clock
	// (to within the loop's sweep period at worst).
	After(d time.Duration, f func())
	// AtClose runs f on the loop when it stops, once, so a method can close
	// the descriptors it opened for this loop.
	AtClose(f func())
}

// AsyncCall is one request of an Async method. The handler sets Reply, or Err
// to fail it, then calls Done, once. Params is valid until Done.
type AsyncCall struct {
	Params []byte // the exact JSON bytes the client sent ("null" when absent)
	Reply  Reply
	Err    error
	done   func(*AsyncCall)
}

// NewAsyncCall returns a call that reports to done when completed. It is for
// servers; a server may reuse the call with Reset once done has run.
func NewAsyncCall(done func(*AsyncCall)) *AsyncCall { return &AsyncCall{done: done} }

// Reset readies c for another request with params. For servers.
func (c *AsyncCall) Reset(params []byte) {
	c.Params, c.Err = params, nil
	c.Reply.Reset()
}

// Done hands the call's answer to the server. Call it once per call, on the
// loop goroutine, after setting Reply or Err; the handler must not touch the
// call afterwards.
func (c *AsyncCall) Done() { c.done(c) }

// AsyncHandler starts every call in calls; see the package doc. It runs on
// the loop goroutine and must not block.
type AsyncHandler func(loop Loop, calls []*AsyncCall)

// RegisterAsync adds name as an Async method. open is called on each loop
// that serves the method, once, the first time the method is called there,
// and returns the handler that loop then uses: state a handler keeps per loop,
// such as a connection the loop drives, is created there. It panics on an
// empty name, a nil open or a name registered twice: all programming errors.
func (r *Registry) RegisterAsync(name string, open func(Loop) AsyncHandler) {
	if open == nil {
		panic(fmt.Sprintf("rpc: register %q with a nil async opener", name))
	}
	r.add(name, entry{async: open, mode: Async})
}

// LookupAsync finds the opener of the Async method name without allocating;
// ok is false when name is not an Async method. Safe from any goroutine once
// registration is over.
func (r *Registry) LookupAsync(name []byte) (open func(Loop) AsyncHandler, ok bool) {
	e, ok := r.m[string(name)]
	return e.async, ok && e.mode == Async
}
