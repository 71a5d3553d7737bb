package worker

import "time"

// sweep enforces timeouts on every conn, using the coarse clock rather than a
// timer per conn, resumes paused accepting, drops clients whose unsent
// answers hold the budget's pressure, returns freed memory and sets the soft
// memory limit.
func (w *Worker) sweep() {
	w.lastSweep = w.now
	w.resumeAccept()
	for _, c := range w.conns {
		if c == nil {
			continue
		}
		switch why := w.expired(c); {
		case why == writeTimeout:
			// A reset frees the kernel's send queue at once.
			w.dropConn(c, why)
		case why != "":
			w.expire(c, why)
		case w.draining:
			w.settle(c) // a conn whose drainGrace ran out starts its lingering close
		}
	}
	w.shedUnsent()
	w.drops.flush(w.now)
	w.releaseMemory()
	w.updateMemoryLimit()
}

const writeTimeout = "write timeout"

// expired names the timeout c has run out of, or returns "".
func (w *Worker) expired(c *conn) string {
	// Answers the socket will not take, with no progress for WriteTimeout: the
	// client stopped reading. Its reading is paused too, so nothing else expires it.
	if d := w.cfg.WriteTimeout; d > 0 && len(c.out) > 0 && c.flags&lingering == 0 && w.since(c.active) >= d {
		return writeTimeout
	}
	switch {
	case c.flags&lingering != 0:
		if w.since(c.active) >= lingerTimeout {
			return "linger timeout"
		}
	case c.partialAt != 0:
		// Only a frame the client is still sending counts; frames held back by
		// the worker itself are not the client's delay.
		if d := w.cfg.ReadTimeout; d > 0 && !w.readPaused(c) && w.since(c.partialAt) >= d {
			return "read timeout"
		}
	case c.out == nil && c.order == nil && c.flags&^unheard == 0:
		if d := w.cfg.IdleTimeout; d > 0 && w.since(c.active) >= d {
			return idleTimeout
		}
	}
	return ""
}

const idleTimeout = "idle timeout"

func (w *Worker) since(t int64) time.Duration { return time.Duration(w.now - t) }
