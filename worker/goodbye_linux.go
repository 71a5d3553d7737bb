package worker

import (
	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// The opt-in goodbye. A client that calls rpcd.hello is told, by one last
// frame after its last answer, that rpcd is closing the connection gracefully:
// whatever it sent after that answer was certainly not read, let alone run.
// Method names and out values beginning "rpcd." are reserved for this.
const (
	helloMethod = "rpcd.hello"
	goodbyeOut  = "rpcd.goodbye"
)

// goodbye states of a conn.
const (
	goodbyeUnasked uint8 = iota // never said hello: today's protocol
	goodbyeOwed                 // said hello: a graceful close sends the goodbye first
	goodbyeSent
)

var helloResult = []byte(`{"goodbye":true}`)

// Reasons given in the goodbye frame.
const (
	goodbyeDrain = "drain"   // the worker stops: stop, reload, retirement
	goodbyeIdle  = "idle"    // Config.IdleTimeout
	goodbyeFrame = "framing" // a framing error ended the conn
)

// answerHello answers rpcd.hello and reports whether the current request was
// one; from then on a graceful close of c is announced.
func (w *Worker) answerHello(c *conn) bool {
	if string(w.req.Method) != helloMethod {
		return false
	}
	c.goodbye = goodbyeOwed
	w.rep.Reset()
	w.rep.SetOut(helloMethod)
	w.rep.SetRaw(helloResult)
	w.answer(c, &w.rep, nil)
	return true
}

// sendGoodbye queues the goodbye frame on c if it is owed, and reports whether
// bytes of it are still unsent: the lingering close must wait for them.
func (w *Worker) sendGoodbye(c *conn, reason string) bool {
	if c.goodbye != goodbyeOwed {
		return false
	}
	c.goodbye = goodbyeSent
	w.outFor(c)
	w.out = protocol.AppendResponse(w.out, w.cfg.ByteOrder, goodbyeOut, []byte(`{"reason":"`+reason+`"}`))
	w.flushOut()
	return len(c.out) > 0
}

// lingerReason names why a conn that owes nothing more closes gracefully.
func (w *Worker) lingerReason(c *conn) string {
	if c.flags&finishing != 0 {
		return goodbyeFrame
	}
	return goodbyeDrain
}

// expire closes c for the timeout why. An idle conn that said hello gets its
// goodbye instead, then reads nothing more and closes with a lingering close,
// so its client knows that a request crossing the close was not read.
func (w *Worker) expire(c *conn, why string) {
	if why != idleTimeout || c.goodbye != goodbyeOwed {
		w.closeConn(c, why)
		return
	}
	w.sendGoodbye(c, goodbyeIdle)
	c.flags |= finishing
	c.closeFor(metrics.CloseIdle)
	w.settle(c)
}
