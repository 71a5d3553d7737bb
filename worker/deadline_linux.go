package worker

import (
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// deadlineQueue lists pooled requests with the loop-clock time at which each
// must be answered. Every request gets the same timeout, so submission order is
// deadline order and a FIFO needs no sorting. Entries whose answer already
// arrived are dropped when they reach the head; pooled jobs finish roughly in
// submission order, so the queue stays about as long as the work in flight.
type deadlineQueue struct {
	items []deadlineEntry
	head  int
}

type deadlineEntry struct {
	at     int64 // loop clock
	fd     int32
	connID uint64
	seq    uint64
	row    int    // the request's metrics row
	method []byte // its method and frame size, for the access log
	in     int
}

func (d *deadlineQueue) push(e deadlineEntry) {
	if d.head > 0 && d.head >= len(d.items)/2 {
		n := copy(d.items, d.items[d.head:])
		d.items = d.items[:n]
		d.head = 0
	}
	d.items = append(d.items, e)
}

func (d *deadlineQueue) peek() (deadlineEntry, bool) {
	if d.head == len(d.items) {
		return deadlineEntry{}, false
	}
	return d.items[d.head], true
}

func (d *deadlineQueue) pop() {
	d.head++
	if d.head == len(d.items) {
		d.items, d.head = d.items[:0], 0
	}
}

// pending reports whether slot seq still waits for its pooled answer.
func (q *answerQueue) pending(seq uint64) bool {
	if seq < q.headSeq || seq >= q.nextSeq() {
		return false
	}
	return !q.slots[q.head+int(seq-q.headSeq)].ready
}

// timeoutError is the answer for a pooled request past its deadline.
func timeoutError(d time.Duration) *protocol.Error {
	return protocol.Errorf(protocol.CodeTimeout, "the handler did not answer within %v", d)
}

// trackDeadline records when the pooled request in slot seq of c must be
// answered.
func (w *Worker) trackDeadline(c *conn, seq uint64, at int64, method []byte) {
	w.deadlines.push(deadlineEntry{at: at, fd: c.fd, connID: c.id, seq: seq, row: w.meter.row,
		method: method, in: w.meter.in})
}

// expireDeadlines answers timeout for every pooled request whose deadline has
// passed, in its slot so the connection's order holds; the handler's eventual
// result then finds the slot filled and is discarded. Entries already answered
// are dropped on the way.
func (w *Worker) expireDeadlines() {
	for {
		e, ok := w.deadlines.peek()
		if !ok {
			break
		}
		c := w.connByID(e.fd, e.connID)
		if c == nil || c.order == nil || !c.order.pending(e.seq) {
			w.deadlines.pop()
			continue
		}
		if e.at > w.now {
			break
		}
		w.deadlines.pop()
		// A copy: the slot owns its buffer, which is reused once written.
		frame := append(w.frameBuf(len(w.timeoutFrame)), w.timeoutFrame...)
		c.order.fill(e.seq, frame)
		w.countDeadline(e.row, e.at-int64(w.cfg.HandlerTimeout))
		w.logTimeout(c, e, len(frame))
		w.stats.answered.Add(1)
		w.stats.errors.Add(1)
		w.markTouched(c)
	}
	w.settleTouched()
}

// deadlineWait is how long the loop may sleep before the oldest pooled
// request's deadline; maxTick when none is waiting.
func (w *Worker) deadlineWait() time.Duration {
	e, ok := w.deadlines.peek()
	if !ok {
		return maxTick
	}
	return time.Duration(e.at - w.clock())
}

// deadlineAt converts a loop-clock instant to wall time, for a handler's ctx.
func (w *Worker) deadlineAt(at int64) time.Time {
	return w.epoch.Add(time.Duration(at))
}
