package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"

	"github.com/rpcd/rpcd/bench/internal/jsonping"
)

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
		if n == 0 || n > jsonping.MaxFrame {
			// The stream cannot be resynchronised: answer, then hang up.
			if writeFrame(w, enc, &out, order, jsonping.FrameError(n)) == nil {
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
		if err := writeFrame(w, enc, &out, order, jsonping.Handle(body)); err != nil {
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

// writeFrame encodes resp into out and buffers it on w as one frame.
func writeFrame(w *bufio.Writer, enc *json.Encoder, out *bytes.Buffer, order binary.ByteOrder, resp jsonping.Response) error {
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
