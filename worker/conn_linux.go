package worker

import (
	"math"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// conn is one client connection. It holds buffers only while it needs them, so
// an idle conn is this struct alone.
type conn struct {
	fd        int32
	sent      uint32       // bytes at the start of out already written
	id        uint64       // unique per accepted conn: pooled answers for a reused fd are dropped
	in        []byte       // unprocessed input: a partial frame, or frames held back; nil when none
	out       []byte       // answers the socket would not take yet, from sent on; nil when none
	order     *answerQueue // answers waiting behind pooled requests; nil when none are outstanding
	active    int64        // clock when bytes last moved, or when lingering began
	partialAt int64        // clock when in became non-empty; 0 while in is empty
	flags     connFlags
	goodbye   uint8  // goodbyeUnasked, goodbyeOwed or goodbyeSent; see goodbye_linux.go
	events    uint8  // epoll interest registered for fd: readEvents, writeEvents
	closing   uint8  // why its graceful close began, for its metrics; see closeFor
	counted   uint32 // bytes counted against the memory budget; see account
}

type connFlags uint8

const (
	finishing connFlags = 1 << iota // framing error: send what is owed, then close
	peerEOF                         // the client stopped sending: send what is owed, then close
	lingering                       // write side shut; discarding input until EOF or the deadline
	closeNow                        // close at the next settle
	pausedOut                       // reading paused: too many unsent answer bytes
	touched                         // listed for settling after pooled answers were routed
	closed                          // gone: stale references to the conn must ignore it
	unheard                         // accepted, nothing received yet; see drainGrace
)

// handleConn handles one epoll event for c.
func (w *Worker) handleConn(c *conn, ev uint32) {
	// First an error, or a hang-up with nothing left to read: the peer is gone,
	// nothing more can be delivered, and a conn not watching input would be
	// told of the hang-up again on every wait. A hang-up with input still
	// readable goes through the read path, which meets the end of stream and
	// closes after answering what it read.
	if isErrorEvent(ev) || isHangup(ev) && !isReadEvent(ev) {
		w.closeConn(c, "hang-up")
		return
	}
	// Writable before readable: sending pending answers frees memory and may lift
	// a backpressure pause, so the read below can go ahead.
	if isWriteEvent(ev) {
		w.handleWritable(c)
	}
	// Readable last: frames read now are answered into the shared output buffer,
	// which settle writes once.
	if isReadEvent(ev) {
		w.handleReadable(c)
	}
	w.settle(c)
}

// handleWritable sends what the socket would not take earlier.
func (w *Worker) handleWritable(c *conn) {
	if len(c.out) == 0 {
		return
	}
	n, err := writeFD(int(c.fd), c.out[c.sent:])
	switch {
	case err == unix.EAGAIN:
	case err != nil:
		w.fail(c, "write", err)
	default:
		c.active = w.now
		w.countBytes(metrics.BytesWritten, n)
		c.wrote(n)
	}
}

// wrote marks n more bytes of c.out as written. c.out keeps the start of its
// buffer, so that the budget counts all of it while any of it is held (see
// held); its unsent rest moves to the front once it is no longer than what
// was written, so copying costs at most the bytes written. The buffer is let
// go once everything is out.
func (c *conn) wrote(n int) {
	sent := int(c.sent) + n
	switch rest := len(c.out) - sent; {
	case rest == 0:
		c.out, c.sent = nil, 0
	case rest <= sent || sent > math.MaxUint32:
		c.compactOut(sent)
	default:
		c.sent = uint32(sent)
	}
}

// compactOut moves c.out's bytes from sent on to the front of its buffer.
func (c *conn) compactOut(sent int) {
	c.out, c.sent = c.out[:copy(c.out, c.out[sent:])], 0
}

// handleReadable reads once into the shared buffer and dispatches every complete
// frame; only what remains unprocessed is copied into c.in.
func (w *Worker) handleReadable(c *conn) {
	if c.flags&lingering != 0 {
		w.discardInput(c)
		return
	}
	if w.readPaused(c) || w.buffered > w.bufferCeiling() {
		// Past the budget's ceiling, the rest of the batch reads nothing:
		// enforceBudget drops the biggest holders before the next wait, whose
		// level-triggered events bring c back.
		return
	}
	buf := w.rbuf
	if w.draining {
		// Read no further than the current frame, so the conn stops at a boundary.
		buf = buf[:min(len(buf), protocol.Missing(c.in, w.cfg.ByteOrder))]
	}
	n, err := readFD(int(c.fd), buf)
	switch {
	case err == unix.EAGAIN:
		return
	case err != nil:
		w.fail(c, "read", err)
		return
	case n == 0:
		c.flags |= peerEOF
		w.dropInput(c)
		return
	}
	c.active = w.now
	c.flags &^= unheard
	w.countBytes(metrics.BytesRead, n)
	w.keep(c, w.assemble(c, buf[:n]))
}

// appendBounded appends b to buf, growing it by up to a quarter of what it
// then holds and never past limit, so a frame's buffer is sized by the bytes
// that arrived rather than by its advertised length; a spare buffer taken
// instead may be larger (see spareReach). An outgrown buffer is kept as a
// spare.
func (w *Worker) appendBounded(buf, b []byte, limit int) []byte {
	need := len(buf) + len(b)
	if need <= cap(buf) {
		return append(buf, b...)
	}
	grown := append(w.spare.get(need, min(need+need/4, max(limit, need))), buf...)
	w.recycle(buf)
	return append(grown, b...)
}

// keep copies input that could not be processed now (a partial frame, or frames
// held back) out of the shared read buffer into c.in, unless c.in still holds
// the frame it began, and drops c.in's buffer once it is empty.
func (w *Worker) keep(c *conn, rest []byte) {
	if len(c.in) > 0 {
		return // a partial frame that took all of the input
	}
	c.in, c.partialAt = nil, 0
	if len(rest) > 0 {
		c.in = append(w.spare.get(len(rest), len(rest)+len(rest)/4), rest...)
		c.partialAt = w.now
	}
}

// dropInput lets go of c's input buffer, keeping it as a spare. c.in must
// start at its buffer's start.
func (w *Worker) dropInput(c *conn) {
	w.recycle(c.in)
	c.in, c.partialAt = nil, 0
}

// discardInput reads and drops what a lingering conn sends; its end of stream or
// a read error ends the linger.
func (w *Worker) discardInput(c *conn) {
	n, err := readFD(int(c.fd), w.rbuf)
	if err == unix.EAGAIN || err == nil && n > 0 {
		w.countBytes(metrics.BytesRead, n)
		return
	}
	c.flags |= closeNow
}

// fail marks c for closing after a socket error.
func (w *Worker) fail(c *conn, op string, err error) {
	c.flags |= closeNow
	if w.log.Core().Enabled(zapcore.DebugLevel) {
		w.log.Debug("connection failed", zap.Int32("fd", c.fd), zap.Uint64("conn", c.id),
			zap.Error(os.NewSyscallError(op, err)))
	}
}

// settle runs after anything happened on c: it releases answers that became
// sendable, resumes held input, writes once, then closes c or updates its
// epoll interest.
func (w *Worker) settle(c *conn) {
	if c.flags&closed != 0 {
		return
	}
	w.releaseReady(c)
	w.flushOut()
	w.updatePause(c)
	w.resumeInput(c)
	if w.finishConn(c) {
		return
	}
	w.updateInterest(c)
	w.account(c)
}

// outFor points the shared output buffer at c, first sending what it holds for
// another conn.
func (w *Worker) outFor(c *conn) {
	if w.outConn != c {
		w.flushOut()
		w.outConn = c
	}
}

// flushOut writes the shared output buffer to its conn: one write, and whatever
// the socket would not take is copied to the conn's own buffer.
func (w *Worker) flushOut() {
	c := w.outConn
	if c == nil {
		return
	}
	w.outConn = nil
	w.send(c, w.out)
	w.account(c)
	w.out = w.out[:0]
	if cap(w.out) > maxKeptOutput {
		w.out = make([]byte, 0, readBufferSize)
	}
}

func (w *Worker) send(c *conn, data []byte) {
	switch {
	case c.flags&closeNow != 0:
		return
	case len(c.out) > 0:
		// Earlier answers are still queued; these go behind them, in room
		// the written ones left if the buffer is full.
		if c.sent > 0 && len(c.out)+len(data) > cap(c.out) {
			c.compactOut(int(c.sent))
		}
		c.out = append(c.out, data...)
		return
	}
	n, err := writeFD(int(c.fd), data)
	if err != nil && err != unix.EAGAIN {
		w.fail(c, "write", err)
		return
	}
	if n > 0 {
		c.active = w.now
		w.countBytes(metrics.BytesWritten, n)
	}
	if n < len(data) {
		c.out = append(c.out, data[n:]...)
	}
}

// pendingBytes counts answer bytes owed to c and not yet in the kernel.
func (w *Worker) pendingBytes(c *conn) int {
	n := len(c.out) - int(c.sent)
	if c.order != nil {
		n += c.order.queued
	}
	if w.outConn == c {
		n += len(w.out)
	}
	return n
}

// updatePause pauses reading from c while its unsent answers exceed MaxPending,
// and resumes once they fall to half of it.
func (w *Worker) updatePause(c *conn) {
	p := w.pendingBytes(c)
	switch {
	case c.flags&pausedOut == 0 && p > w.cfg.MaxPending:
		c.flags |= pausedOut
		w.stats.paused.Add(1)
	case c.flags&pausedOut != 0 && p <= w.cfg.MaxPending/2:
		c.flags &^= pausedOut
		w.stats.paused.Add(-1)
	}
}

// holdInput reports whether c's frames must wait: it is closing, its unsent
// answers are over the limit, or it has too many requests on the pool.
func (w *Worker) holdInput(c *conn) bool {
	if c.flags&(finishing|peerEOF|closeNow|pausedOut) != 0 {
		return true
	}
	if c.order != nil && c.order.pooled >= maxPooledPerConn {
		return true
	}
	return w.pendingBytes(c) > w.cfg.MaxPending
}

// readPaused reports whether the loop must not read from c now.
func (w *Worker) readPaused(c *conn) bool {
	switch {
	case w.holdInput(c):
		return true
	case len(c.in) == 0:
		// At a frame boundary, nothing more is read under memory pressure, nor
		// while draining, except the first request of a conn accepted just
		// before the drain (see drainGrace).
		return w.pressed || w.draining && !w.awaitingFirst(c)
	}
	// Frames already held must go before any new input.
	return protocol.Missing(c.in, w.cfg.ByteOrder) == 0
}

// resumeInput processes frames that were read but held back, as far as c can
// now take them.
func (w *Worker) resumeInput(c *conn) {
	held := len(c.in)
	for len(c.in) > 0 && !w.holdInput(c) {
		before, buf := len(c.in), c.in
		w.assemble(c, nil)
		if c.in != nil { // else assemble let go of buf
			c.in = buf[:copy(buf, c.in)]
		}
		w.flushOut()
		w.updatePause(c)
		if len(c.in) == before {
			break // only a partial frame is left
		}
	}
	switch {
	case len(c.in) == 0:
		w.dropInput(c)
	case len(c.in) != held:
		c.partialAt = w.now
	}
}

// finishConn closes c, or starts its lingering close, once nothing more is owed
// to it. It reports whether c is closed.
func (w *Worker) finishConn(c *conn) bool {
	if c.flags&(closeNow|lingering) == 0 && c.order == nil && len(c.out) == 0 {
		switch {
		case c.flags&peerEOF != 0:
			c.flags |= closeNow
		case c.flags&finishing != 0, w.draining && len(c.in) == 0 && !w.awaitingFirst(c):
			w.startLinger(c)
		}
	}
	if c.flags&closeNow == 0 {
		return false
	}
	w.closeConn(c, closeReason(c.flags))
	return true
}

func closeReason(f connFlags) string {
	switch {
	case f&lingering != 0:
		return "linger over"
	case f&peerEOF != 0:
		return "client finished"
	}
	return "socket error"
}

// awaitingFirst reports whether a drain should still wait for c's first
// request: c was accepted less than drainGrace ago and has sent nothing. The
// old worker of a reload may accept a connection just before it starts to
// drain; closing it at once would hand its client an end of stream in answer
// to the request it is about to send.
func (w *Worker) awaitingFirst(c *conn) bool {
	return c.flags&unheard != 0 && w.since(c.active) < drainGrace
}

// startLinger shuts the write side, so the client reads a clean end of stream
// after its last answer, then discards what it still sends until it closes or
// the linger deadline passes: closing with unread input would reset the
// connection and could destroy answers the client has not read yet.
func (w *Worker) startLinger(c *conn) {
	c.closeFor(metrics.CloseDrain) // unless a framing error or an idle timeout began it
	if w.sendGoodbye(c, w.lingerReason(c)) {
		return // settle lingers once the goodbye is out
	}
	if err := unix.Shutdown(int(c.fd), unix.SHUT_WR); err != nil {
		w.fail(c, "shutdown", err)
		return
	}
	c.flags |= lingering
	c.active = w.now
	w.dropInput(c)
}

// updateInterest registers the events c waits for: readable unless reading is
// paused, writable only while answers are pending.
func (w *Worker) updateInterest(c *conn) {
	var want uint32
	if c.flags&lingering != 0 || !w.readPaused(c) {
		want |= readEvents
	}
	if len(c.out) > 0 {
		want |= writeEvents
	}
	if want == uint32(c.events) {
		return
	}
	if err := w.poll.mod(int(c.fd), want); err != nil {
		w.log.Warn("update connection events", zap.Int32("fd", c.fd), zap.Error(err))
		w.closeConn(c, "epoll failed")
		return
	}
	c.events = uint8(want)
}

func (w *Worker) closeConn(c *conn, why string) {
	if w.outConn == c {
		w.outConn = nil
		w.out = w.out[:0]
	}
	if c.flags&pausedOut != 0 {
		w.stats.paused.Add(-1)
	}
	if c.order != nil {
		w.dropQueue(c)
	}
	w.forget(c)
	w.countClose(c, why)
	w.dropInput(c)
	_ = unix.Close(int(c.fd))
	w.conns[c.fd] = nil
	c.flags = closed
	c.out, c.sent = nil, 0
	w.stats.open.Add(-1)
	if w.atConnLimit {
		w.resumeAccept()
	}
	w.endLimitEpisode()
	if w.log.Core().Enabled(zapcore.DebugLevel) {
		w.log.Debug("bye", zap.Int32("fd", c.fd), zap.Uint64("conn", c.id), zap.String("why", why))
	}
}
