package master

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The event handlers. Each updates the state and records what the event
// asks for; none signals, starts or stops a process: step does that.

// onSignal records what sig asks for.
func (m *Master) onSignal(sig os.Signal) {
	act, ok := signalActions[sig]
	if !ok {
		m.log.Debug("ignoring signal", zap.Stringer("signal", sig))
		return
	}
	if act != actReap {
		m.log.Info("signal received", zap.Stringer("signal", sig))
	}
	switch act {
	case actAddWorker:
		m.state.slotsToAdd++
	case actRemoveWorker:
		m.state.slotsToDrop++
	}
	m.request(act)
}

// request records act for step; repeated requests merge, except that
// onSignal counts the slots to add and to remove.
func (m *Master) request(act action) { m.state.requested |= act }

// dropRequest forgets a request that will not be carried out.
func (m *Master) dropRequest(act action) {
	m.state.requested &^= act
	switch act {
	case actAddWorker:
		m.state.slotsToAdd = 0
	case actRemoveWorker:
		m.state.slotsToDrop = 0
	}
}

// onPipe routes what a child wrote to the upgrade check or a worker.
func (m *Master) onPipe(ev pipeEvent) {
	if c := m.state.check; c != nil && c.seq == ev.seq {
		c.onOutput(ev)
		return
	}
	for _, w := range m.state.workers {
		if w.seq == ev.seq {
			m.onStatus(w, ev)
			return
		}
	}
}

// onStatus records the status bytes of worker w.
func (m *Master) onStatus(w *worker, ev pipeEvent) {
	if ev.eof {
		return // its exit is on its way
	}
	w.lastBeat = ev.when
	for _, b := range ev.data {
		// A heartbeat also means ready: the ready byte of a worker adopted
		// across an upgrade may have been read by the old image.
		if !w.ready && (b == StatusReady || b == StatusHeartbeat) {
			m.markReady(w)
		}
		if b == StatusRecycle {
			w.recycle = true
		}
	}
}

// markReady records that w accepts connections. What that completes (a
// replacement, a rollout, the master's start) step carries out.
func (m *Master) markReady(w *worker) {
	w.ready = true
	m.log.Info("worker ready", zap.Int("slot", w.slot.index), zap.Int("pid", w.pid), zap.Int("generation", w.gen))
	if w.role == serving {
		w.slot.everReady = true
		m.state.everReady = true
	}
}

// onStopReleased records that the stop's hold (Hooks.HoldStop) is over.
func (m *Master) onStopReleased() {
	m.state.stopHeld = nil
	m.state.stopReleased = true
}

// reapChildren collects every exited child, workers or not, so that none is
// left a zombie (the master may be PID 1 in a container).
func (m *Master) reapChildren(now time.Time) {
	for {
		pid, st, ok := m.sys.reap()
		if !ok {
			return
		}
		m.onExit(pid, st, now)
	}
}

// onExit forgets an exited child and records what its exit means.
func (m *Master) onExit(pid int, st unix.WaitStatus, now time.Time) {
	if c := m.state.check; c != nil && c.pid == pid {
		c.onExit(st)
		return
	}
	w := m.state.workers[pid]
	if w == nil {
		m.log.Debug("reaped unknown child", zap.Int("pid", pid), zap.String("status", describeStatus(st)))
		m.foldUnknown(pid, st)
		return
	}
	delete(m.state.workers, pid)
	w.release()
	m.foldWorker(w, st)
	s := w.slot
	if s.worker == w {
		s.worker = nil
	}
	if s.replacement == w {
		s.replacement = nil
	}
	m.onWorkerExit(w, st, now)
}

// onWorkerExit logs a worker's exit and records what it means for its slot
// or for the rollout it belonged to.
func (m *Master) onWorkerExit(w *worker, st unix.WaitStatus, now time.Time) {
	fields := []zap.Field{zap.Int("slot", w.slot.index), zap.Int("pid", w.pid),
		zap.Int("generation", w.gen), zap.String("status", describeStatus(st))}
	exit := &ExitError{Pid: w.pid, Status: st}
	switch {
	case m.state.stopping:
		m.log.Info("worker stopped", fields...)
	case w.role == retiring:
		m.log.Info("old worker exited", fields...)
	case w.role == incoming:
		m.log.Warn("new worker exited", fields...)
		m.state.roll.fail(fmt.Errorf("start new worker: %w", exit))
	case w.role == replacement:
		m.log.Warn("replacement worker exited", fields...)
		m.recordFailure(w.slot, exit, now)
	default:
		m.log.Warn("worker exited", append(fields, zap.Duration("uptime", now.Sub(w.started)))...)
		if w.ready && now.Sub(w.started) >= m.backoff.stable {
			w.slot.failures = 0
		}
		m.recordFailure(w.slot, exit, now)
	}
}

// recordFailure counts a failed worker of slot s and schedules the next one.
func (m *Master) recordFailure(s *slot, err error, now time.Time) {
	s.failures++
	s.lastErr = err
	delay := m.backoff.delay(s.failures)
	s.restartAt = now.Add(delay)
	if m.state.everReady && s.failures >= crashLoopFailures {
		m.log.Error("worker slot crash-looping", zap.Int("slot", s.index),
			zap.Int("failures", s.failures), zap.Duration("next_delay", delay))
	}
	m.giveUpIfNoneStarts(s)
}

// giveUpIfNoneStarts requests a stop with an error when every slot has
// failed startAttempts times in a row and no worker was ever ready: the
// workers cannot start at all (a bad binary, a bad flag).
func (m *Master) giveUpIfNoneStarts(last *slot) {
	if m.state.everReady || m.state.stopping || m.state.fatal != nil {
		return
	}
	for _, s := range m.state.slots {
		if s.failures < startAttempts {
			return
		}
	}
	m.state.fatal = fmt.Errorf("no worker could start: slot %d: %w", last.index, last.lastErr)
	m.request(actStop)
}
