package rpc

import (
	"encoding/json"
	"fmt"

	"github.com/rpcd/rpcd/protocol"
)

// Reply collects a handler's answer. A server reuses one Reply for many
// calls, so a handler must not keep it after returning. An unset result
// answers null.
type Reply struct {
	out    string
	result []byte
}

// maxKeptResult bounds the result buffer a Reply keeps between calls.
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

// Reset empties r for the next call, dropping an unusually large buffer. A
// server calls it before each handler it runs on r.
func (r *Reply) Reset() {
	r.out = ""
	if cap(r.result) > maxKeptResult {
		r.result = nil
	}
	r.result = r.result[:0]
}

var null = []byte("null")

// AppendAnswer appends the answer frame a call's outcome makes: the error
// answer for err when it is non-nil (see the package doc for its code), else
// rep's out and result, null when no result was set.
func AppendAnswer(dst []byte, order protocol.ByteOrder, rep *Reply, err error) []byte {
	if err != nil {
		return protocol.AppendError(dst, order, protocol.ErrorFor(err, protocol.CodeInternal))
	}
	result := rep.result
	if len(result) == 0 {
		result = null
	}
	return protocol.AppendResponse(dst, order, rep.out, result)
}
