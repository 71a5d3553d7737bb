package worker

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// batcher collects the calls of one Batch method and runs them as batches,
// one at a time. Its fields are the loop's, but for name and h, which a
// running batch reads.
type batcher struct {
	name    string
	method  []byte // name, for the answers' access log records
	h       rpc.BatchHandler
	waiting []batchCall // read since the last batch started
	running bool        // a batch is out; the next waits for its answers
	listed  bool        // in batchSet.due
}

// batchCall is one call waiting for or in a batch. It owns a copy of its
// params, since the loop reuses the bytes they came from.
type batchCall struct {
	params   []byte
	fd       int32
	connID   uint64
	seq      uint64 // the answer slot on the connection
	at       int64  // deadline, loop clock
	deadline time.Time
	row      int   // its method's metrics row
	readAt   int64 // loop clock when its request was read
	in       int   // its request frame's size, for the access log
}

// batchSet is a worker's batchers by method name, and those with calls to
// start at the end of the loop turn.
type batchSet struct {
	byName map[string]*batcher
	due    []*batcher
}

// batcherFor returns the batcher of the current request's method, a Batch
// method. Loop goroutine only.
func (w *Worker) batcherFor() *batcher {
	if b := w.batches.byName[string(w.req.Method)]; b != nil {
		return b
	}
	h, _ := w.reg.LookupBatch(w.req.Method)
	if w.batches.byName == nil {
		w.batches.byName = make(map[string]*batcher)
	}
	b := &batcher{name: string(w.req.Method), method: bytes.Clone(w.req.Method), h: h}
	w.batches.byName[b.name] = b
	return b
}

// enqueueBatch adds the current request to its method's next batch, with a
// slot on c that keeps its answer in order. A full queue answers overloaded.
func (w *Worker) enqueueBatch(c *conn) {
	b := w.batcherFor()
	if len(b.waiting) >= w.cfg.QueueSize {
		w.answer(c, nil, errOverloaded)
		return
	}
	if c.order == nil {
		c.order = w.newQueue()
	}
	q := c.order
	at := w.now + int64(w.cfg.HandlerTimeout)
	b.waiting = append(b.waiting, batchCall{params: append([]byte(nil), w.req.Params...),
		fd: c.fd, connID: c.id, seq: q.nextSeq(), at: at, deadline: w.deadlineAt(at),
		row: w.meter.row, readAt: w.now, in: w.meter.in})
	q.pushPending()
	w.meter.inFlight++
	w.trackDeadline(c, q.nextSeq()-1, at, b.method)
	w.markDue(b)
}

func (w *Worker) markDue(b *batcher) {
	if !b.listed {
		b.listed = true
		w.batches.due = append(w.batches.due, b)
	}
}

// startBatches starts a batch for each due batcher that has none out, with
// the calls whose slots still wait; a call answered timeout meanwhile never
// runs. Loop goroutine only, at the end of a turn.
func (w *Worker) startBatches() {
	due := w.batches.due[:0]
	for _, b := range w.batches.due {
		if b.running {
			due = append(due, b) // started again when its batch comes back
			continue
		}
		b.listed = false
		calls := b.waiting[:0]
		for _, bc := range b.waiting {
			if c := w.connByID(bc.fd, bc.connID); c != nil && c.order != nil && c.order.pending(bc.seq) {
				calls = append(calls, bc)
			} else {
				w.meter.inFlight-- // answered timeout, or its conn is gone
			}
		}
		b.waiting = nil
		if len(calls) > 0 {
			b.running = true
			go w.runBatch(b, calls)
		}
	}
	clear(w.batches.due[len(due):])
	w.batches.due = due
}

// batchDone notes that b's batch came back, so its waiting calls may start.
// Loop goroutine only.
func (w *Worker) batchDone(b *batcher) {
	b.running = false
	if len(b.waiting) > 0 {
		w.markDue(b)
	}
}

// runBatch runs b's handler on calls and delivers their answers together. It
// runs on a goroutine of its own; it reads only what the loop no longer
// changes.
func (w *Worker) runBatch(b *batcher, items []batchCall) {
	calls := make([]rpc.Call, len(items))
	for i := range items {
		calls[i].Params = items[i].params
	}
	ctx, cancel := context.WithDeadline(context.Background(), items[len(items)-1].deadline)
	w.callBatch(ctx, b, calls)
	cancel()
	now := time.Now()
	res := make([]result, len(items))
	for i, it := range items {
		err, rep := calls[i].Err, &calls[i].Reply
		if !now.Before(it.deadline) {
			err = w.pool.timeout
		}
		buf := make([]byte, 0, answerOverhead+len(rep.Out())+len(rep.Result()))
		res[i] = result{fd: it.fd, connID: it.connID, seq: it.seq, isErr: err != nil,
			frame: rpc.AppendAnswer(buf, w.cfg.ByteOrder, rep, err),
			code:  uint8(codeIndex(err)), row: it.row, readAt: it.readAt, method: b.method, in: it.in}
	}
	w.pool.deliverBatch(res, b)
}

// callBatch runs b's handler, failing every call with an internal error when
// it panics. Safe from any goroutine.
func (w *Worker) callBatch(ctx context.Context, b *batcher, calls []rpc.Call) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("batch handler panicked", zap.String("method", b.name), zap.Int("calls", len(calls)),
				zap.String("panic", fmt.Sprint(p)), zap.StackSkip("stack", 1))
			err := protocol.Errorf(protocol.CodeInternal, "method %q panicked", b.name)
			for i := range calls {
				calls[i].Err = err
			}
		}
	}()
	b.h(ctx, calls)
}
