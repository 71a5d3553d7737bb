package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// pending is one request written to a connection, waiting for its answer.
type pending struct {
	done   chan struct{} // closed once out, result and err are set
	out    string
	result []byte
	err    error
}

// slot is one of the Client's connections, redialled when it fails. Its mutex
// serializes writes, so the order of a session's pending queue is the order of
// its requests on the wire.
type slot struct {
	client *Client
	mu     sync.Mutex
	sess   *session
}

// session is one TCP connection and the requests awaiting answers on it.
type session struct {
	nc          net.Conn
	readTimeout time.Duration
	mu          sync.Mutex
	pending     []*pending // oldest first
	dead        bool
}

// connect replaces the slot's session with a new connection.
func (s *slot) connect() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectLocked()
}

func (s *slot) connectLocked() error {
	c := s.client
	nc, err := net.DialTimeout("tcp", c.addr, c.opts.DialTimeout)
	if err != nil {
		return err
	}
	ss := &session{nc: nc, readTimeout: c.opts.ReadTimeout}
	s.sess = ss
	go ss.readAnswers(c.opts.ByteOrder, c.opts.MaxFrame)
	return nil
}

// send writes frame and returns the request's pending answer. A session that
// the server already closed is replaced first: nothing written to it yet can
// have been read.
func (s *slot) send(ctx context.Context, frame []byte) (*pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client.closed.Load() {
		return nil, ErrClosed
	}
	for {
		if s.sess == nil || s.sess.isDead() {
			if err := s.connectLocked(); err != nil {
				return nil, fmt.Errorf("dial %s: %w", s.client.addr, err)
			}
		}
		p := &pending{done: make(chan struct{})}
		if s.sess.push(p) {
			s.sess.write(ctx, p, frame)
			return p, nil
		}
	}
}

func (s *slot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != nil {
		s.sess.fail(ErrClosed)
	}
}

func (ss *session) isDead() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.dead
}

// push queues p for the next answer; false if the session has failed.
func (ss *session) push(p *pending) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.dead {
		return false
	}
	ss.pending = append(ss.pending, p)
	return true
}

// write sends p's frame. A write that fails part way leaves a partial frame
// the server can never run, so p fails as not sent; the session fails too.
func (ss *session) write(ctx context.Context, p *pending, frame []byte) {
	deadline, _ := ctx.Deadline()
	_ = ss.nc.SetWriteDeadline(deadline)
	n, err := ss.nc.Write(frame)
	ss.mu.Lock()
	if err == nil {
		// Expect an answer within readTimeout; see readAnswers. If every answer
		// is in already, pop has cleared the deadline and it must stay clear.
		if len(ss.pending) > 0 {
			_ = ss.nc.SetReadDeadline(time.Now().Add(ss.readTimeout))
		}
		ss.mu.Unlock()
		return
	}
	if last := len(ss.pending) - 1; n < len(frame) && last >= 0 && ss.pending[last] == p {
		ss.pending = ss.pending[:last]
		p.err = errNotSent
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// The call's own deadline passed before any byte went out: the
			// stream is intact, so the calls waiting on it carry on.
			p.err = fmt.Errorf("send request: %w", context.DeadlineExceeded)
			close(p.done)
			ss.mu.Unlock()
			return
		}
		close(p.done)
	}
	ss.mu.Unlock()
	ss.fail(fmt.Errorf("write request: %w", err))
}

// fail closes the session; every request still waiting may have been read by
// the server and fails with ErrMaybeSent.
func (ss *session) fail(cause error) {
	ss.mu.Lock()
	if ss.dead {
		ss.mu.Unlock()
		return
	}
	ss.dead = true
	waiting := ss.pending
	ss.pending = nil
	ss.mu.Unlock()
	_ = ss.nc.Close()
	for _, p := range waiting {
		p.err = fmt.Errorf("%w: %w", ErrMaybeSent, cause)
		close(p.done)
	}
}

// pop takes the oldest pending request, and clears the read deadline once
// none is left, so an idle connection is not dropped.
func (ss *session) pop() *pending {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.pending) == 0 {
		return nil
	}
	p := ss.pending[0]
	ss.pending[0] = nil
	ss.pending = ss.pending[1:]
	if len(ss.pending) == 0 {
		_ = ss.nc.SetReadDeadline(time.Time{})
	}
	return p
}

// readAnswers matches each answer to the oldest pending request until the
// connection fails.
func (ss *session) readAnswers(order protocol.ByteOrder, maxFrame uint32) {
	br := bufio.NewReaderSize(ss.nc, 64<<10)
	for {
		// A new body each time: the caller keeps the result, which aliases it.
		body, err := protocol.ReadFrame(br, order, maxFrame, nil)
		if err != nil {
			ss.fail(fmt.Errorf("read answer: %w", err))
			return
		}
		p := ss.pop()
		if p == nil {
			ss.fail(errors.New("answer to no request"))
			return
		}
		p.out, p.result, p.err = decodeAnswer(body)
		close(p.done)
	}
}

// decodeAnswer splits an answer body; result aliases body.
func decodeAnswer(body []byte) (string, []byte, error) {
	var resp protocol.Response
	if err := protocol.ParseResponse(body, &resp); err != nil {
		// Not %w: the parse error's code is not the server's.
		return "", nil, fmt.Errorf("parse answer: %v", err)
	}
	if string(resp.Out) != "error" {
		return string(resp.Out), resp.Result, nil
	}
	if e, ok := resp.AsError(); ok {
		return "", nil, e
	}
	return "", nil, fmt.Errorf("malformed error answer: %s", resp.Result)
}
