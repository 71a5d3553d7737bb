package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// Handler answers one request. params is the raw JSON params ("null" if absent),
// valid only during the call. It sets the answer on rep. Returning a
// *protocol.Error answers that error; any other error answers code internal with
// err.Error(); a panic answers internal and the worker lives on.
type Handler func(ctx context.Context, params []byte, rep *Reply) error

// Reply collects a handler's answer. The worker reuses one Reply per loop (and
// one per offload goroutine), so a handler must not keep it after returning. An
// unset result answers null.
type Reply struct {
	out    string
	result []byte
}

// maxKeptResult bounds the result buffer a Reply keeps between requests.
const maxKeptResult = 1 << 20

// SetOut sets the answer's "out" member.
func (r *Reply) SetOut(out string) { r.out = out }

// SetRaw sets the result to a copy of the raw JSON b.
func (r *Reply) SetRaw(b []byte) { r.result = append(r.result[:0], b...) }

// AppendRaw appends raw JSON bytes to the result, for results built in pieces.
func (r *Reply) AppendRaw(b []byte) { r.result = append(r.result, b...) }

// SetJSON sets the result to the JSON encoding of v.
func (r *Reply) SetJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	r.result = append(r.result[:0], b...)
	return nil
}

// Out reports the "out" set so far.
func (r *Reply) Out() string { return r.out }

// Result reports the raw JSON result set so far; nil when unset.
func (r *Reply) Result() []byte { return r.result }

// resultOrNull is the result to encode: null when the handler set none.
func (r *Reply) resultOrNull() []byte {
	if len(r.result) == 0 {
		return null
	}
	return r.result
}

var null = []byte("null")

// reset empties r for the next request, dropping an unusually large buffer.
func (r *Reply) reset() {
	r.out = ""
	if cap(r.result) > maxKeptResult {
		r.result = nil
	}
	r.result = r.result[:0]
}

// Mode says where a handler runs.
type Mode uint8

const (
	// Inline handlers run on the event loop; they must be quick and never block.
	Inline Mode = iota
	// Blocking handlers run on the offload pool.
	Blocking
)

func (m Mode) String() string {
	switch m {
	case Inline:
		return "inline"
	case Blocking:
		return "blocking"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

type entry struct {
	h    Handler
	mode Mode
}

// Registry maps method names to handlers. Register everything before Serve;
// a Registry is read concurrently by workers and must not change while they run.
type Registry struct {
	m map[string]entry
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{m: make(map[string]entry)}
}

// Register adds h under name. It panics on an empty name, a nil handler, an
// unknown mode or a name registered twice: all programming errors.
func (r *Registry) Register(name string, mode Mode, h Handler) {
	switch {
	case name == "":
		panic("worker: register a handler with an empty name")
	case h == nil:
		panic(fmt.Sprintf("worker: register %q with a nil handler", name))
	case mode != Inline && mode != Blocking:
		panic(fmt.Sprintf("worker: register %q with %v", name, mode))
	}
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("worker: register %q twice", name))
	}
	r.m[name] = entry{h: h, mode: mode}
}

// Lookup finds the handler for name without allocating.
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
