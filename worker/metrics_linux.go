package worker

import (
	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// The worker's shared counters (Config.Metrics). Everything here runs on
// the loop goroutine, and records into the Recorder's own memory; the loop
// publishes it once per turn (publishMetrics). With Config.Metrics nil the
// calls do nothing.

// meterState is the loop's bookkeeping for its counters.
type meterState struct {
	row      int    // the current request's method row
	method   []byte // the current request's method, nil when unknown
	in       int    // the current request's frame size
	mark     int64  // loop clock of the last inline answer
	inFlight int64  // blocking and batch calls taken, result not collected (or dropped) yet
	access   accessState
}

// beginRequest notes the method and frame size of the request being
// dispatched.
func (w *Worker) beginRequest(method []byte, size int) {
	w.meter.row, w.meter.method, w.meter.in = w.cfg.Metrics.Row(method), method, size
}

// otherRequest notes a request of size bytes whose method is not known (a
// framing error, a body that does not parse).
func (w *Worker) otherRequest(size int) {
	w.meter.row, w.meter.method, w.meter.in = w.cfg.Metrics.Row(nil), nil, size
}

// countAnswer counts an answer of size bytes the loop made for the current
// request: its duration is the loop's time since its previous answer, or
// since this wakeup began, whichever is later, so one clock read serves
// each answer.
func (w *Worker) countAnswer(c *conn, err error, size int) {
	if w.cfg.Metrics == nil && w.cfg.AccessLog == nil {
		return
	}
	now := w.clock()
	start := max(w.meter.mark, w.now)
	w.meter.mark = now
	code := codeIndex(err)
	w.cfg.Metrics.Request(w.meter.row, code, now-start)
	if err == errOverloaded { // the pool's or a batch's own refusal, not a handler's answer
		w.cfg.Metrics.Add(metrics.PoolOverloaded, 1)
	}
	if w.cfg.AccessLog != nil {
		w.logAccess(c.fd, w.meter.method, code, now, now-start, w.meter.in, size)
	}
}

// countPooled counts a blocking call's answer, read at readAt (loop clock).
func (w *Worker) countPooled(row, code int, readAt int64) {
	w.cfg.Metrics.Request(row, code, w.now-readAt)
}

// countDeadline counts the timeout answer the loop made for a blocking or
// batch call, read at readAt, that passed its deadline.
func (w *Worker) countDeadline(row int, readAt int64) {
	w.countPooled(row, metrics.CodeTimeout, readAt)
	w.cfg.Metrics.Add(metrics.PoolTimeouts, 1)
}

// codeIndex is err's index in metrics.Codes.
func codeIndex(err error) int {
	switch e := err.(type) {
	case nil:
		return metrics.CodeOK
	case *protocol.Error:
		return metrics.CodeIndex(e.Code)
	}
	return metrics.CodeIndex(protocol.ErrorFor(err, protocol.CodeInternal).Code)
}

// closeFor records reason (an index into metrics.CloseReasons) as why c's
// graceful close began: a framing error, an idle timeout with a goodbye, a
// drain. The first reason recorded stands.
func (c *conn) closeFor(reason int) {
	if c.closing == 0 {
		c.closing = uint8(reason) + 1
	}
}

// countClose counts a connection closed for why (closeConn's reasons).
func (w *Worker) countClose(c *conn, why string) {
	if w.cfg.Metrics != nil {
		w.cfg.Metrics.Add(metrics.Closed(closedFor(c, why)), 1)
	}
}

// closedFor is the metrics.CloseReasons index of c closed for why: a
// timeout or a drop counts as itself; any other end of a conn whose
// graceful close had begun counts as what began it (closeFor).
func closedFor(c *conn, why string) int {
	switch why {
	case idleTimeout:
		return metrics.CloseIdle
	case "read timeout":
		return metrics.CloseReadTimeout
	case writeTimeout:
		return metrics.CloseWriteTimeout
	case memoryBudget:
		return metrics.CloseBudget
	}
	if c.closing != 0 {
		return int(c.closing) - 1
	}
	switch why {
	case "hang-up", "client finished":
		return metrics.CloseClient
	case "worker stopped", "linger over", "linger timeout":
		return metrics.CloseDrain
	}
	return metrics.CloseError
}

// countBytes counts bytes read from or written to connections.
func (w *Worker) countBytes(counter int, n int) {
	if n > 0 {
		w.cfg.Metrics.Add(counter, uint64(n))
	}
}

// publishMetrics sets the gauges and publishes the turn's counts. It runs
// once per loop turn and once more when closeLoop has closed every conn.
func (w *Worker) publishMetrics() {
	m := w.cfg.Metrics
	if m == nil {
		return
	}
	m.Set(metrics.OpenConns, w.stats.open.Load())
	m.Set(metrics.InFlight, w.meter.inFlight)
	if w.pool != nil {
		m.Set(metrics.QueueDepth, int64(len(w.pool.jobs)))
	}
	m.Publish()
}
