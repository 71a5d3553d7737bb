package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
)

// maxFrame is the largest request body accepted.
const maxFrame = 1 << 20

type request struct {
	In     string          `json:"in"`
	Params json.RawMessage `json:"params"`
}

type response struct {
	Out    string `json:"out"`
	Result any    `json:"result"`
}

type errorResult struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorResponse(code, format string, args ...any) response {
	return response{Out: "error", Result: errorResult{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// serveConn answers the requests of one connection in order until it closes.
func serveConn(conn net.Conn, order binary.ByteOrder) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	var header [4]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return
		}
		n := order.Uint32(header[:])
		if n == 0 || n > maxFrame {
			// The stream cannot be resynchronised: answer, then hang up.
			if writeFrame(w, enc, &out, order, frameError(n)) == nil {
				w.Flush()
			}
			return
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if err := writeFrame(w, enc, &out, order, handle(body)); err != nil {
			return
		}
		// Flush only once no further request is waiting, so that the answers to
		// pipelined requests go out together.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// frameError is the answer to a frame length that is zero or too large.
func frameError(n uint32) response {
	if n == 0 {
		return errorResponse("bad_frame", "frame length is zero")
	}
	return errorResponse("frame_too_large", "frame of %d bytes exceeds %d", n, maxFrame)
}

// handle decodes one request body and computes its answer.
func handle(body []byte) response {
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
		return response{Out: "pong", Result: req.Params}
	default:
		return errorResponse("unknown_method", "unknown method %q", req.In)
	}
}

// writeFrame encodes resp into out and buffers it on w as one frame.
func writeFrame(w *bufio.Writer, enc *json.Encoder, out *bytes.Buffer, order binary.ByteOrder, resp response) error {
	out.Reset()
	if err := enc.Encode(resp); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	frame := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	var header [4]byte
	order.PutUint32(header[:], uint32(len(frame)))
	if _, err := w.Write(header[:]); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}
