package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

const (
	// maxAnswer bounds the answer frames accepted from the server.
	maxAnswer = 16 << 20
	// ioTimeout bounds each wait for the server; the deadline is pushed forward
	// at most once per deadlineRefresh to keep timer updates off the hot path.
	ioTimeout       = 10 * time.Second
	deadlineRefresh = time.Second
	dialTimeout     = 5 * time.Second
	// maxFailures bounds the consecutive failures of one connection: refused
	// dials and sessions that failed without a single answer.
	maxFailures = 5
)

// errBadFrame marks an answer that cannot be framed; the connection is dropped.
var errBadFrame = errors.New("bad answer frame")

// client is one load-generating connection, re-established after failures.
type client struct {
	cfg      *config
	addr     string // the endpoint this connection dials
	sched    *schedule
	stats    *stats
	answered atomic.Int64 // all answers, warmup included; read by the progress line
	batch    []byte       // depth copies of the request frame
	frameLen int
	inflight sendQueue
	wire     wire
}

func newClient(cfg *config, sched *schedule, addr string) *client {
	w := newWire(cfg)
	frame := w.request()
	return &client{
		cfg:      cfg,
		addr:     addr,
		sched:    sched,
		stats:    newStats(),
		batch:    bytes.Repeat(frame, cfg.depth),
		frameLen: len(frame),
		inflight: newSendQueue(cfg.depth),
		wire:     w,
	}
}

// run drives load until the schedule is finished or the connection fails
// maxFailures times in a row.
func (c *client) run() {
	pause := c.sched.backoffStart
	failures, sessions := 0, 0
	for {
		conn, err := net.DialTimeout("tcp", c.addr, dialTimeout)
		if err != nil {
			c.stats.recordConnError(err)
			if failures++; failures >= maxFailures || c.sched.finished(c.sched.now()) {
				return
			}
			time.Sleep(pause) // back off before redialling a failing server
			pause *= 2
			continue
		}
		if sessions++; sessions > 1 {
			c.stats.reconnects++
		}
		answeredBefore := c.answered.Load()
		err = c.session(conn)
		conn.Close()
		if err == nil {
			return
		}
		c.stats.recordConnError(err)
		c.stats.lost += int64(c.inflight.len())
		if c.answered.Load() > answeredBefore {
			failures, pause = 0, c.sched.backoffStart
		}
		if failures++; failures >= maxFailures || c.sched.finished(c.sched.now()) {
			return
		}
	}
}

// session runs the sliding window on one connection. It returns nil once the
// schedule is finished and every request sent has been answered.
func (c *client) session(conn net.Conn) error {
	c.inflight.reset()
	r := frameReader{conn: conn, wire: c.wire, sched: c.sched}
	var deadlineSet time.Duration = -deadlineRefresh
	for {
		now := c.sched.now()
		if now-deadlineSet >= deadlineRefresh {
			if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
				return fmt.Errorf("set deadline: %w", err)
			}
			deadlineSet = now
		}
		if err := c.topUp(conn, now); err != nil {
			return err
		}
		if c.inflight.len() == 0 {
			return nil
		}
		if err := c.readAnswers(&r); err != nil {
			return err
		}
	}
}

// topUp sends as many requests as the window and the schedule allow, in one write.
func (c *client) topUp(conn net.Conn, now time.Duration) error {
	n, measured := c.sched.grant(now, c.cfg.depth-c.inflight.len())
	if n == 0 {
		return nil
	}
	sentAt := c.sched.now()
	for range n {
		c.inflight.push(sentAt, measured)
	}
	if _, err := conn.Write(c.batch[:n*c.frameLen]); err != nil {
		return fmt.Errorf("write requests: %w", err)
	}
	return nil
}

// readAnswers waits for one answer, then takes any others already received.
func (c *client) readAnswers(r *frameReader) error {
	for {
		body, err := r.next()
		if err != nil {
			return err
		}
		sentAt, measured := c.inflight.pop()
		if measured {
			c.stats.recordLatency(r.readAt - sentAt)
		}
		c.check(body)
		c.answered.Add(1)
		if c.inflight.len() == 0 || !r.buffered() {
			return nil
		}
	}
}

// check verifies one answer body and counts it if it is wrong or an error.
func (c *client) check(body []byte) {
	switch v := c.wire.check(body); {
	case v.mismatch:
		c.stats.recordMismatch(body)
	case v.errCode != "":
		c.stats.errorAnswers++
		c.stats.errorCodes[v.errCode]++
	}
}

// errorCode extracts the code of an error answer's result.
func errorCode(result []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(result, &e) != nil || e.Code == "" {
		return "unparsable"
	}
	return e.Code
}

// sendQueue holds the send times of the requests in flight, oldest first.
type sendQueue struct {
	sentAt   []time.Duration
	measured []bool
	head, n  int
}

func newSendQueue(size int) sendQueue {
	return sendQueue{sentAt: make([]time.Duration, size), measured: make([]bool, size)}
}

func (q *sendQueue) len() int { return q.n }
func (q *sendQueue) reset()   { q.head, q.n = 0, 0 }

// push appends a request; the caller keeps n below the window size.
func (q *sendQueue) push(sentAt time.Duration, measured bool) {
	i := (q.head + q.n) % len(q.sentAt)
	q.sentAt[i], q.measured[i] = sentAt, measured
	q.n++
}

// pop removes the oldest request; answers come back in request order.
func (q *sendQueue) pop() (sentAt time.Duration, measured bool) {
	sentAt, measured = q.sentAt[q.head], q.measured[q.head]
	q.head = (q.head + 1) % len(q.sentAt)
	q.n--
	return sentAt, measured
}

// frameReader splits answer frames out of what is read from the connection.
type frameReader struct {
	conn       net.Conn
	wire       wire
	sched      *schedule
	buf        []byte
	start, end int           // buf[start:end] is received and not yet consumed
	readAt     time.Duration // when the last read returned
}

// next returns the next answer body, reading as needed. The body aliases the
// reader's buffer and is valid until the following call.
func (r *frameReader) next() ([]byte, error) {
	for {
		body, n, err := r.wire.split(r.buf[r.start:r.end])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errBadFrame, err)
		}
		if n > 0 {
			r.start += n
			return body, nil
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// buffered reports whether a whole frame (or a framing error) is already received.
func (r *frameReader) buffered() bool {
	_, n, err := r.wire.split(r.buf[r.start:r.end])
	return n > 0 || err != nil
}

// fill reads once, first making room for the rest of the partial frame.
func (r *frameReader) fill() error {
	const minRead = 64 << 10
	pending := r.buf[r.start:r.end]
	need := max(r.wire.missing(pending), 1)
	if r.start > 0 && r.end+need > len(r.buf) {
		r.end = copy(r.buf, pending)
		r.start = 0
	}
	if r.end+need > len(r.buf) {
		grown := make([]byte, max(2*len(r.buf), r.end+need, minRead))
		r.end = copy(grown, r.buf[r.start:r.end])
		r.start, r.buf = 0, grown
	}
	n, err := r.conn.Read(r.buf[r.end:])
	r.end += n
	if n > 0 || err == nil {
		r.readAt = r.sched.now()
		return nil
	}
	return fmt.Errorf("read answers: %w", err)
}
