package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// Reserved names of the goodbye handshake; see the README's protocol section.
const (
	helloMethod = "rpcd.hello"
	goodbyeOut  = "rpcd.goodbye"
)

// pending is one request written to a connection, waiting for its answer.
type pending struct {
	done    chan struct{} // closed once out, result and err are set
	settled atomic.Bool   // the answer, a failure or the call's deadline came
	out     string
	result  []byte
	err     error
}

// settle sets p's outcome and wakes its caller, unless p is settled already:
// an answer that comes after the call's deadline is dropped. It may be called
// from any goroutine.
func (p *pending) settle(out string, result []byte, err error) {
	if p.settled.Swap(true) {
		return
	}
	p.out, p.result, p.err = out, result, err
	close(p.done)
}

// slot is one of an endpoint's connections, redialled when it fails. Its
// mutex serializes writes, so the order of a session's pending queue is the
// order of its requests on the wire.
type slot struct {
	ep      *endpoint
	calls   atomic.Int32 // calls using the slot now, counted where the endpoint has more than one
	mu      sync.Mutex
	sess    *session
	retired bool // the endpoint left the list: close once idle, never redial
}

// session is one TCP connection and the requests awaiting answers on it.
type session struct {
	ep          *endpoint
	nc          net.Conn
	readTimeout time.Duration
	goodbye     bool // the server promised a goodbye before a graceful close
	mu          sync.Mutex
	pending     []*pending // oldest first
	dead        bool
	closeIdle   bool // close once nothing is pending
}

// connectLocked replaces the slot's session with a new connection that has
// said hello.
func (s *slot) connectLocked(ctx context.Context) error {
	ep := s.ep
	ss, err := ep.open(ctx)
	if err != nil {
		return err
	}
	s.sess = ss
	go ss.readAnswers(ep.client.opts.ByteOrder, ep.client.opts.MaxFrame)
	return nil
}

// send writes frame and returns the request's pending answer. A session that
// the server already closed is replaced first: nothing written to it yet can
// have been read. A failure to connect is errNotSent.
func (s *slot) send(ctx context.Context, frame []byte) (*pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ep.client.closed.Load() {
		return nil, ErrClosed
	}
	for {
		if s.retired {
			return nil, fmt.Errorf("%w: %s left the list", errNotSent, s.ep.addr)
		}
		if s.sess == nil || s.sess.isDead() {
			if err := s.connectLocked(ctx); err != nil {
				return nil, fmt.Errorf("%w: %w", errNotSent, err)
			}
		}
		p := &pending{done: make(chan struct{})}
		if s.sess.push(p) {
			s.sess.write(ctx, p, frame)
			return p, nil
		}
	}
}

// close fails the slot's session with cause.
func (s *slot) close(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	if s.sess != nil {
		s.sess.fail(cause)
	}
}

// retire closes the slot's session once its answers are in.
func (s *slot) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = true
	if s.sess != nil {
		s.sess.retire()
	}
}

// dial connects to addr and says hello, within timeout. A server that does
// not know the hello is used without the goodbye; one that does not answer
// fails the dial, so a connection that is never served carries no request.
func dial(ctx context.Context, addr string, opts *Options) (net.Conn, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("dial %s: %w", addr, err)
	}
	goodbye, err := hello(nc, opts)
	if err != nil {
		nc.Close()
		return nil, false, fmt.Errorf("hello %s: %w", addr, err)
	}
	return nc, goodbye, nil
}

// hello sends rpcd.hello on a new connection and reads its answer within
// opts.ProbeTimeout; it reports whether the server promised a goodbye.
func hello(nc net.Conn, opts *Options) (bool, error) {
	_ = nc.SetDeadline(time.Now().Add(opts.ProbeTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(protocol.AppendRequest(nil, opts.ByteOrder, helloMethod, nil)); err != nil {
		return false, err
	}
	body, err := protocol.ReadFrame(nc, opts.ByteOrder, opts.MaxFrame, nil)
	if err != nil {
		return false, err
	}
	out, _, err := decodeAnswer(body)
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe) && pe.Code == protocol.CodeUnknownMethod:
		return false, nil
	case err != nil:
		return false, err
	}
	return out == helloMethod, nil
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
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// The call's own deadline passed before any byte went out: the
			// stream is intact, so the calls waiting on it carry on.
			p.settle("", nil, fmt.Errorf("send request: %w", context.DeadlineExceeded))
			ss.mu.Unlock()
			return
		}
		p.settle("", nil, errNotSent)
	}
	ss.mu.Unlock()
	ss.fail(fmt.Errorf("write request: %w", err))
}

// fail closes the session; every request still waiting may have been read by
// the server and fails with ErrMaybeSent, unless cause says it was not read.
// It reports false if the session had failed already.
func (ss *session) fail(cause error) bool {
	ss.mu.Lock()
	if ss.dead {
		ss.mu.Unlock()
		return false
	}
	ss.dead = true
	waiting := ss.pending
	ss.pending = nil
	ss.mu.Unlock()
	_ = ss.nc.Close()
	err := cause
	if !errors.Is(cause, errNotSent) && !errors.Is(cause, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrMaybeSent, cause)
	}
	for _, p := range waiting {
		p.settle("", nil, err)
	}
	return true
}

// retire closes the session now if nothing is pending, else after the last
// answer.
func (ss *session) retire() {
	ss.mu.Lock()
	ss.closeIdle = true
	idle := len(ss.pending) == 0
	ss.mu.Unlock()
	if idle {
		ss.fail(ErrClosed)
	}
}

// pop takes the oldest pending request, and clears the read deadline once
// none is left, so an idle connection is not dropped. It reports whether the
// session is to close now.
func (ss *session) pop() (*pending, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.pending) == 0 {
		return nil, false
	}
	p := ss.pending[0]
	ss.pending[0] = nil
	ss.pending = ss.pending[1:]
	if len(ss.pending) == 0 {
		_ = ss.nc.SetReadDeadline(time.Time{})
	}
	return p, ss.closeIdle && len(ss.pending) == 0
}

// readAnswers matches each answer to the oldest pending request until the
// connection fails or the server says goodbye.
func (ss *session) readAnswers(order protocol.ByteOrder, maxFrame uint32) {
	br := bufio.NewReaderSize(ss.nc, 64<<10)
	for {
		// A new body each time: the caller keeps the result, which aliases it.
		body, err := protocol.ReadFrame(br, order, maxFrame, nil)
		if err != nil {
			if ss.fail(fmt.Errorf("read answer: %w", err)) {
				ss.ep.connFailed()
			}
			return
		}
		ss.ep.answered()
		out, result, err := decodeAnswer(body)
		if ss.goodbye && out == goodbyeOut {
			// Every request still pending was sent after the last answer: none
			// was read, and each may go to another endpoint.
			ss.fail(fmt.Errorf("%w: %w (%s)", errNotSent, errGoodbye, result))
			return
		}
		p, last := ss.pop()
		if p == nil {
			if ss.fail(errors.New("answer to no request")) {
				ss.ep.connFailed()
			}
			return
		}
		p.settle(out, result, err)
		if last {
			ss.fail(ErrClosed)
			return
		}
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
