// Package jsonping is the request handling shared by the comparison servers:
// rpcd's protocol written the way most Go programs would write it, with
// encoding/json structs. Handle answers ping with its params and any other
// method with the rpcd error envelope.
package jsonping

import (
	"encoding/json"
	"fmt"
)

// MaxFrame is the largest request body accepted.
const MaxFrame = 1 << 20

type request struct {
	In     string          `json:"in"`
	Params json.RawMessage `json:"params"`
}

// Response is one answer, ready for a json.Encoder with HTML escaping off, so
// echoed params come back byte for byte.
type Response struct {
	Out    string `json:"out"`
	Result any    `json:"result"`
}

type errorResult struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorResponse(code, format string, args ...any) Response {
	return Response{Out: "error", Result: errorResult{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// FrameError is the answer to a frame length that is zero or over MaxFrame.
func FrameError(n uint32) Response {
	if n == 0 {
		return errorResponse("bad_frame", "frame length is zero")
	}
	return errorResponse("frame_too_large", "frame of %d bytes exceeds %d", n, MaxFrame)
}

// Handle decodes one request body and computes its answer.
func Handle(body []byte) Response {
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return errorResponse("bad_request", "decode request: %v", err)
	}
	switch req.In {
	case "":
		return errorResponse("bad_request", `request has no "in"`)
	case "ping":
		if req.Params == nil {
			req.Params = json.RawMessage("null")
		}
		return Response{Out: "pong", Result: req.Params}
	default:
		return errorResponse("unknown_method", "unknown method %q", req.In)
	}
}
