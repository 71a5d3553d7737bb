package rpc

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Handler answers one request; see the package doc for what it may do.
type Handler func(ctx context.Context, params []byte, rep *Reply) error

// Mode says where a handler runs.
type Mode uint8

const (
	// Inline handlers run on the event loop; they must be quick and never block.
	Inline Mode = iota
	// Blocking handlers run on the worker's pool, under the handler deadline.
	Blocking
	// Batch handlers get every call of their method from one loop turn at
	// once, on a goroutine of their own; see RegisterBatch.
	Batch
	// Async handlers run on the event loop and complete their calls later,
	// from callbacks the loop runs; see RegisterAsync.
	Async
)

func (m Mode) String() string {
	switch m {
	case Inline:
		return "inline"
	case Blocking:
		return "blocking"
	case Batch:
		return "batch"
	case Async:
		return "async"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

type entry struct {
	h     Handler
	batch BatchHandler
	async func(Loop) AsyncHandler
	mode  Mode
}

// Registry maps method names to handlers. Register everything before it is
// served; a Registry is read concurrently and must not change while served.
type Registry struct {
	m map[string]entry
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{m: make(map[string]entry)}
}

// ReservedPrefix starts the names of the methods rpcd itself answers, such
// as rpcd.hello; no handler may be registered under it.
const ReservedPrefix = "rpcd."

// Register adds h under name as an Inline or Blocking method (Batch and Async
// methods register with RegisterBatch and RegisterAsync). It panics on an empty name, a name starting
// with ReservedPrefix, a nil handler, another mode or a name registered
// twice: all programming errors.
func (r *Registry) Register(name string, mode Mode, h Handler) {
	switch {
	case h == nil:
		panic(fmt.Sprintf("rpc: register %q with a nil handler", name))
	case mode != Inline && mode != Blocking:
		panic(fmt.Sprintf("rpc: register %q with %v", name, mode))
	}
	r.add(name, entry{h: h, mode: mode})
}

func (r *Registry) add(name string, e entry) {
	switch {
	case name == "":
		panic("rpc: register a handler with an empty name")
	case strings.HasPrefix(name, ReservedPrefix):
		panic(fmt.Sprintf("rpc: register %q: names starting %q are reserved for rpcd", name, ReservedPrefix))
	}
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("rpc: register %q twice", name))
	}
	r.m[name] = e
}

// Lookup finds the handler for name without allocating; h is nil for a Batch
// or Async method (see LookupBatch, LookupAsync). Safe from any goroutine once registration is over.
func (r *Registry) Lookup(name []byte) (h Handler, mode Mode, ok bool) {
	e, ok := r.m[string(name)]
	return e.h, e.mode, ok
}

// Methods lists the registered names in order.
func (r *Registry) Methods() []string {
	names := make([]string, 0, len(r.m))
	for name := range r.m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
