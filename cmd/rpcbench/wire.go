package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/rpcd/rpcd/protocol"
)

// wire is the request a client sends and how it splits and checks the answers.
type wire interface {
	// request returns one encoded request.
	request() []byte
	// split finds the first complete answer at the start of buf, as protocol.Split.
	split(buf []byte) (body []byte, n int, err error)
	// missing is a lower bound on the bytes still needed to complete the first answer.
	missing(buf []byte) int
	// check classifies one answer body.
	check(body []byte) verdict
}

// verdict is the outcome of checking one answer.
type verdict struct {
	errCode  string // non-empty for an error answer
	mismatch bool   // not the expected answer
}

// newWire picks the client's wire format from the command line.
func newWire(cfg *config) wire {
	if cfg.redis {
		return respPing{}
	}
	return &frameWire{cfg: cfg, isPing: cfg.method == "ping"}
}

// frameWire speaks rpcd's length-prefixed JSON frames.
type frameWire struct {
	cfg    *config
	isPing bool
	resp   protocol.Response // reused for every answer
}

func (f *frameWire) request() []byte {
	return protocol.AppendRequest(nil, f.cfg.byteOrder, f.cfg.method, f.cfg.params)
}

func (f *frameWire) split(buf []byte) ([]byte, int, error) {
	return protocol.Split(buf, f.cfg.byteOrder, maxAnswer)
}

func (f *frameWire) missing(buf []byte) int { return protocol.Missing(buf, f.cfg.byteOrder) }

// check parses the answer; for ping, out must be "pong" and the result the
// params byte for byte.
func (f *frameWire) check(body []byte) verdict {
	resp := &f.resp
	if err := protocol.ParseResponse(body, resp); err != nil {
		return verdict{mismatch: true}
	}
	if string(resp.Out) == "error" {
		return verdict{errCode: errorCode(resp.Result)}
	}
	if f.isPing && (string(resp.Out) != "pong" || !bytes.Equal(resp.Result, f.cfg.params)) {
		return verdict{mismatch: true}
	}
	return verdict{}
}

// respPing speaks the Redis protocol (RESP): PING as an array of one bulk
// string, answered by the simple string PONG.
type respPing struct{}

// maxRESPLine bounds an answer line; PONG and error lines are far shorter.
const maxRESPLine = 64 << 10

var (
	respPingRequest = []byte("*1\r\n$4\r\nPING\r\n")
	respPong        = []byte("+PONG")
	errRESPLine     = errors.New("RESP answer line too long")
)

func (respPing) request() []byte { return respPingRequest }

// split returns one line without its CRLF. PING's answers (+PONG, or an
// -ERR line) are single lines.
func (respPing) split(buf []byte) ([]byte, int, error) {
	i := bytes.Index(buf, []byte("\r\n"))
	switch {
	case i >= 0:
		return buf[:i], i + 2, nil
	case len(buf) > maxRESPLine:
		return nil, 0, fmt.Errorf("%w: over %d bytes", errRESPLine, maxRESPLine)
	}
	return nil, 0, nil
}

func (respPing) missing([]byte) int { return 1 }

func (respPing) check(body []byte) verdict {
	switch {
	case bytes.Equal(body, respPong):
		return verdict{}
	case len(body) > 0 && body[0] == '-':
		return verdict{errCode: "redis"}
	}
	return verdict{mismatch: true}
}
