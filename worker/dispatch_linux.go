package worker

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

var errOverloaded = &protocol.Error{Code: protocol.CodeOverloaded, Message: "offload queue is full"}

// assemble is the loop's frame assembler. It dispatches the whole frames of
// c's input, c.in followed by data, for as long as c can take them, and
// returns what is left of data. A frame begun in c.in takes from data only the
// bytes it lacks, header first, so c.in never holds more than that frame and a
// bad length prefix is answered before any of its body is stored. Frames that
// lie whole in data are dispatched where they lie, uncopied.
func (w *Worker) assemble(c *conn, data []byte) []byte {
	resliced := false // c.in no longer starts at its buffer's start
	for !w.holdInput(c) {
		if len(c.in) == 0 {
			n, err := w.nextFrame(c, data)
			switch {
			case err != nil:
				return nil
			case n == 0:
				return data
			}
			data = data[n:]
			continue
		}
		data = w.extendPartial(c, data)
		n, err := w.nextFrame(c, c.in)
		switch {
		case err != nil:
			return nil
		case n > 0 && n == len(c.in) && !resliced:
			w.dropInput(c)
		case n > 0:
			c.in, resliced = c.in[n:], true
		case len(data) == 0:
			return data
		}
		// else the header in c.in just came whole: go on with its body.
	}
	return data
}

// nextFrame dispatches the frame at the start of buf and returns its size, 0
// when buf holds no whole frame. A bad length prefix is answered as a framing
// error and returned.
func (w *Worker) nextFrame(c *conn, buf []byte) (int, error) {
	body, n, err := protocol.Split(buf, w.cfg.ByteOrder, w.cfg.MaxFrame)
	if err != nil {
		w.frameError(c, err)
		return 0, err
	}
	if n > 0 {
		w.dispatch(c, body)
	}
	return n, nil
}

// extendPartial moves from data into c.in what c.in's first frame still
// lacks, no more than the rest of its header while that is partial, and
// returns the rest of data.
func (w *Worker) extendPartial(c *conn, data []byte) []byte {
	order := w.cfg.ByteOrder
	take := min(protocol.Missing(c.in, order), len(data))
	c.in = w.appendBounded(c.in, data[:take], protocol.FrameSize(c.in, order))
	return data[take:]
}

// frameError answers a framing error; c reads nothing more and closes once its
// answers are out.
func (w *Worker) frameError(c *conn, err error) {
	w.stats.requests.Add(1)
	w.otherRequest(0)
	code := protocol.CodeBadFrame
	if tooLarge := (*protocol.FrameTooLargeError)(nil); errors.As(err, &tooLarge) {
		code = protocol.CodeFrameTooLarge
	}
	w.answer(c, nil, &protocol.Error{Code: code, Message: err.Error()})
	c.flags |= finishing
	c.closeFor(metrics.CloseFrameError)
	c.in, c.partialAt = nil, 0
	if w.log.Core().Enabled(zapcore.DebugLevel) {
		w.log.Debug("framing error", zap.Int32("fd", c.fd), zap.Uint64("conn", c.id), zap.Error(err))
	}
}

// dispatch answers one request body: inline, through the pool, in a batch or
// by an Async handler.
func (w *Worker) dispatch(c *conn, body []byte) {
	w.stats.requests.Add(1)
	if err := protocol.ParseRequest(body, &w.req); err != nil {
		w.otherRequest(protocol.HeaderSize + len(body))
		w.answer(c, nil, protocol.ErrorFor(err, protocol.CodeBadRequest))
		return
	}
	w.beginRequest(w.req.Method, protocol.HeaderSize+len(body))
	if w.log.Core().Enabled(zapcore.DebugLevel) {
		w.log.Debug("request", zap.Int32("fd", c.fd), zap.String("in", string(w.req.Method)),
			zap.ByteString("params", w.req.Params))
	}
	if w.answerHello(c) {
		return
	}
	h, mode, ok := w.reg.Lookup(w.req.Method)
	switch {
	case !ok:
		w.answer(c, nil, protocol.Errorf(protocol.CodeUnknownMethod, "unknown method %q", w.req.Method))
	case mode == rpc.Blocking:
		w.offload(c, h)
	case mode == rpc.Batch:
		w.enqueueBatch(c)
	case mode == rpc.Async:
		w.enqueueAsync(c)
	default:
		w.rep.Reset()
		err := callHandler(context.Background(), w.log, h, w.req.Method, w.req.Params, &w.rep)
		w.answer(c, &w.rep, err)
	}
}

// offload queues the current request on the pool, with a slot on c that keeps
// its answer in order. A full queue answers overloaded at once.
func (w *Worker) offload(c *conn, h rpc.Handler) {
	if c.order == nil {
		c.order = w.newQueue()
	}
	q := c.order
	method, params := w.req.Method, w.req.Params
	buf := make([]byte, len(method)+len(params))
	copy(buf[copy(buf, method):], params)
	at := w.now + int64(w.cfg.HandlerTimeout)
	j := job{h: h, buf: buf, split: len(method), fd: c.fd, connID: c.id, seq: q.nextSeq(), deadline: w.deadlineAt(at),
		row: w.meter.row, readAt: w.now, in: w.meter.in}
	if !w.pool.submit(j) {
		if q.empty() {
			w.dropQueue(c)
		}
		w.answer(c, nil, errOverloaded)
		return
	}
	q.pushPending()
	w.meter.inFlight++
	w.trackDeadline(c, j.seq, at, j.method())
}

// answer encodes rep, or err when non-nil, as c's next answer: behind c's
// pending pooled answers if it has any, else into the shared output buffer.
func (w *Worker) answer(c *conn, rep *rpc.Reply, err error) {
	order := w.cfg.ByteOrder
	var size int
	if q := c.order; q != nil && !q.empty() {
		s := q.readyTail()
		n := len(s.data)
		s.data = rpc.AppendAnswer(s.data, order, rep, err)
		size = len(s.data) - n
		q.queued += size
	} else {
		w.outFor(c)
		n := len(w.out)
		w.out = rpc.AppendAnswer(w.out, order, rep, err)
		size = len(w.out) - n
	}
	w.stats.answered.Add(1)
	if err != nil {
		w.stats.errors.Add(1)
	}
	w.countAnswer(c, err, size)
}

// routeResults files finished pooled and batched answers into their conns'
// slots, then settles each conn once, so it gets one write however many
// answers arrived.
func (w *Worker) routeResults() {
	results, returned := w.pool.collect()
	for _, b := range returned {
		w.batchDone(b)
	}
	for _, r := range results {
		w.fileResult(r)
	}
	w.settleTouched()
}

// fileResult files one pooled, batched or async answer into its conn's slot
// and lists the conn for settling; an answer whose slot was answered timeout,
// or whose conn closed, is dropped.
func (w *Worker) fileResult(r result) {
	w.meter.inFlight--
	c := w.connByID(r.fd, r.connID)
	if c == nil || c.order == nil || !c.order.fill(r.seq, r.frame) {
		return // the conn closed; its fd may belong to another by now
	}
	w.countPooled(int(r.row), int(r.code), r.readAt)
	w.logPooled(c, &r)
	w.stats.answered.Add(1)
	if r.isErr {
		w.stats.errors.Add(1)
	}
	w.markTouched(c)
}

// markTouched lists c for settling once after a batch of pooled answers.
func (w *Worker) markTouched(c *conn) {
	if c.flags&touched == 0 {
		c.flags |= touched
		w.touched = append(w.touched, c)
	}
}

// settleTouched settles each listed conn once.
func (w *Worker) settleTouched() {
	for i, c := range w.touched {
		c.flags &^= touched
		w.settle(c)
		w.touched[i] = nil
	}
	w.touched = w.touched[:0]
}

func (w *Worker) connByID(fd int32, id uint64) *conn {
	if c := w.connAt(int(fd)); c != nil && c.id == id {
		return c
	}
	return nil
}

// releaseReady moves c's answers that no longer wait on a pooled answer to the
// shared output buffer, and frees c's queue once it is empty.
func (w *Worker) releaseReady(c *conn) {
	q := c.order
	if q == nil {
		return
	}
	for {
		data, ok := q.popReady()
		if !ok {
			break
		}
		w.outFor(c)
		w.out = append(w.out, data...)
		w.recycleFrame(data)
	}
	if q.empty() {
		w.dropQueue(c)
	}
}

// recycleFrame keeps an answer buffer that is no longer referenced, if of a
// size frameBuf hands out, for the next answer an Async call completes or a
// timeout fills on the loop.
func (w *Worker) recycleFrame(b []byte) {
	if cap(b) >= answerOverhead && cap(b) <= maxKeptFrame && len(w.freeFrames) < maxFreeFrames {
		w.freeFrames = append(w.freeFrames, b[:0])
	}
}

// frameBuf returns an empty buffer with room for size bytes.
func (w *Worker) frameBuf(size int) []byte {
	if n := len(w.freeFrames); n > 0 && size <= maxKeptFrame {
		b := w.freeFrames[n-1]
		w.freeFrames[n-1] = nil
		w.freeFrames = w.freeFrames[:n-1]
		if cap(b) >= size {
			return b
		}
	}
	return make([]byte, 0, size)
}

// newQueue returns an empty queue numbered from seqFloor, so a late pooled
// answer meant for a conn's earlier queue never matches a slot of this one.
func (w *Worker) newQueue() *answerQueue {
	var q *answerQueue
	if n := len(w.freeQueues); n > 0 {
		q = w.freeQueues[n-1]
		w.freeQueues = w.freeQueues[:n-1]
	} else {
		q = new(answerQueue)
	}
	q.headSeq = w.seqFloor
	return q
}

func (w *Worker) dropQueue(c *conn) {
	q := c.order
	c.order = nil
	w.seqFloor = max(w.seqFloor, q.nextSeq())
	if len(w.freeQueues) < maxFreeQueues && cap(q.slots) <= maxPooledPerConn {
		q.reset()
		w.freeQueues = append(w.freeQueues, q)
	}
}
