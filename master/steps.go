package master

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// startAttempts is how many times in a row every slot must fail, before any
// worker has ever been ready, for Run to give up.
const startAttempts = 3

// crashLoopFailures is how many failures in a row make a slot crash-looping.
const crashLoopFailures = 3

// reapChildren collects every exited child, workers or not, so that none is
// left a zombie (the master may be PID 1 in a container).
func (m *Master) reapChildren(now time.Time) {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			return
		}
		m.handleExit(pid, st, now)
	}
}

// handleExit forgets an exited worker and acts on what it was.
func (m *Master) handleExit(pid int, st unix.WaitStatus, now time.Time) {
	w := m.state.workers[pid]
	if w == nil {
		m.log.Debug("reaped unknown child", zap.Int("pid", pid), zap.String("status", describeStatus(st)))
		return
	}
	delete(m.state.workers, pid)
	w.release()
	s := w.slot
	if s.worker == w {
		s.worker = nil
	}
	if s.next == w {
		s.next = nil
	}
	fields := []zap.Field{zap.Int("slot", s.index), zap.Int("pid", pid),
		zap.Int("generation", w.gen), zap.String("status", describeStatus(st))}
	switch {
	case m.state.stopping:
		m.log.Info("worker stopped", fields...)
	case w.role == retiring:
		m.log.Info("old worker exited", fields...)
	case w.role == incoming:
		m.log.Warn("new worker exited", fields...)
		m.abortRollout(fmt.Errorf("new worker %d exited: %s", pid, describeStatus(st)))
	case w.role == next:
		m.log.Warn("replacement worker exited", fields...)
		m.recordFailure(s, &ExitError{Pid: pid, Status: st}, now)
	default:
		m.log.Warn("worker exited", append(fields, zap.Duration("uptime", now.Sub(w.started)))...)
		if w.ready && now.Sub(w.started) >= m.backoff.stable {
			s.failures = 0
		}
		m.recordFailure(s, &ExitError{Pid: pid, Status: st}, now)
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
	m.giveUpIfNoneStarts(s, now)
}

// giveUpIfNoneStarts stops the master with an error when every slot has
// failed startAttempts times in a row and no worker was ever ready: the
// workers cannot start at all (a bad binary, a bad flag).
func (m *Master) giveUpIfNoneStarts(last *slot, now time.Time) {
	if m.state.everReady || m.state.stopping {
		return
	}
	for _, s := range m.state.slots {
		if s.failures < startAttempts {
			return
		}
	}
	m.state.fatal = fmt.Errorf("no worker could start: slot %d: %w", last.index, last.lastErr)
	m.stopWorkers(now)
}

// forgetFailures clears the failure count of slots whose worker has been
// ready and up long enough to count as healthy.
func (m *Master) forgetFailures(now time.Time) {
	for _, s := range m.state.slots {
		if w := s.worker; w != nil && w.ready && now.Sub(w.started) >= m.backoff.stable {
			s.failures = 0
		}
	}
}

// killUnready kills workers that did not report ready within StartTimeout;
// they are then reaped and replaced like any failed worker.
func (m *Master) killUnready(now time.Time) {
	if m.state.stopping {
		return
	}
	for _, w := range m.state.workers {
		if w.ready || w.killed || w.role == retiring || now.Before(w.started.Add(m.cfg.StartTimeout)) {
			continue
		}
		m.log.Warn("worker not ready in time; killing", zap.Int("slot", w.slot.index),
			zap.Int("pid", w.pid), zap.Duration("timeout", m.cfg.StartTimeout))
		m.kill(w)
	}
}

// killHung is the watchdog: it kills ready workers whose loop has not sent
// a heartbeat for WorkerTimeout. They are then replaced like a crash.
func (m *Master) killHung(now time.Time) {
	if m.cfg.WorkerTimeout <= 0 || m.state.stopping {
		return
	}
	for _, w := range m.state.workers {
		if !w.ready || w.killed || now.Sub(w.lastBeat) < m.cfg.WorkerTimeout {
			continue
		}
		m.log.Warn("worker timed out; killing", zap.Int("slot", w.slot.index), zap.Int("pid", w.pid),
			zap.Duration("silent", now.Sub(w.lastBeat)), zap.Duration("timeout", m.cfg.WorkerTimeout))
		m.kill(w)
	}
}

// killDrained sends SIGKILL to retiring workers past their drain deadline.
func (m *Master) killDrained(now time.Time) {
	for _, w := range m.state.workers {
		if w.role == retiring && !w.killed && !now.Before(w.drainBy) {
			m.log.Warn("old worker did not drain in time; killing", zap.Int("pid", w.pid),
				zap.Duration("timeout", m.cfg.DrainTimeout))
			m.kill(w)
		}
	}
}

// excuseSilence moves every worker's last heartbeat up to now, after the
// loop itself was busy and could not read them.
func (m *Master) excuseSilence(now time.Time) {
	for _, w := range m.state.workers {
		w.lastBeat = now
	}
}

func (m *Master) kill(w *worker) {
	w.killed = true
	m.signalWorker(w, unix.SIGKILL)
}

// spawnDue starts a worker in every empty slot whose restart time has come.
func (m *Master) spawnDue(now time.Time) {
	for _, s := range m.state.slots {
		if m.state.stopping { // a failed spawn may have given up
			return
		}
		if s.worker == nil && !s.restartAt.IsZero() && !now.Before(s.restartAt) {
			s.restartAt = time.Time{}
			s.worker = m.spawnWorker(s, m.state.gen, &m.cfg, serving, now)
		}
	}
}

// stopWorkers begins a graceful stop: no more restarts, SIGTERM to every
// worker, and a deadline for stragglers.
func (m *Master) stopWorkers(now time.Time) {
	if m.state.stopping {
		return
	}
	m.state.stopping = true
	m.state.stopDeadline = now.Add(m.cfg.ShutdownTimeout)
	if m.cfg.OnStopping != nil {
		m.cfg.OnStopping()
	}
	// The workers of a rollout get SIGTERM too; one that reports ready
	// now no longer completes it (commitIfReady).
	pids := m.signalWorkers(unix.SIGTERM)
	m.log.Info("stopping workers", masterPid(), zap.Ints("pids", pids),
		zap.Duration("timeout", m.cfg.ShutdownTimeout))
}

// killStragglers sends SIGKILL to the workers still running at the stop
// deadline.
func (m *Master) killStragglers(now time.Time) {
	if !m.state.stopping || m.state.killedAll || now.Before(m.state.stopDeadline) {
		return
	}
	m.state.killedAll = true
	if pids := m.signalWorkers(unix.SIGKILL); len(pids) > 0 {
		m.log.Warn("workers did not stop in time; killing", zap.Ints("pids", pids),
			zap.Duration("timeout", m.cfg.ShutdownTimeout))
	}
}

// signalWorkers sends sig to every running worker and returns their pids.
func (m *Master) signalWorkers(sig os.Signal) []int {
	var pids []int
	for _, w := range m.state.workers {
		m.signalWorker(w, sig)
		pids = append(pids, w.pid)
	}
	slices.Sort(pids)
	return pids
}

// signalWorker sends sig to w. A worker that has exited but is not reaped
// yet is no error: its exit is on its way.
func (m *Master) signalWorker(w *worker, sig os.Signal) {
	if err := w.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		m.log.Warn("signal worker failed", zap.Int("pid", w.pid),
			zap.Stringer("signal", sig), zap.Error(err))
	}
}

// handleStatus acts on a byte from a worker's status pipe.
func (m *Master) handleStatus(ev statusEvent, now time.Time) {
	w := m.state.workers[ev.pid]
	if w == nil || w.seq != ev.seq || ev.eof {
		return // that worker is gone, or its exit is on its way
	}
	w.lastBeat = ev.when
	// A heartbeat also means ready: the ready byte of a worker adopted
	// across an upgrade may have been read by the old image.
	if !w.ready && (ev.b == StatusReady || ev.b == StatusHeartbeat) {
		m.markReady(w, now)
	}
	if ev.b == StatusRecycle {
		m.recycle(w, now)
	}
}

// markReady records that w accepts connections and acts on what that
// completes: a replacement, a rollout, the master's start.
func (m *Master) markReady(w *worker, now time.Time) {
	w.ready = true
	s := w.slot
	m.log.Info("worker ready", zap.Int("slot", s.index), zap.Int("pid", w.pid), zap.Int("generation", w.gen))
	switch w.role {
	case serving:
		s.everReady = true
		m.state.everReady = true
		m.announceReady()
	case next:
		m.promote(s, now)
	case incoming:
		m.commitIfReady(now)
	}
}

// announceReady logs "master ready" and calls OnReady once every slot's
// first worker has reported ready.
func (m *Master) announceReady() {
	if m.state.announced || m.state.stopping {
		return
	}
	for _, s := range m.state.slots {
		if !s.everReady {
			return
		}
	}
	m.state.announced = true
	m.log.Info("master ready", zap.Stringer("addr", m.Addr()),
		zap.Int("workers", len(m.state.slots)), masterPid())
	if m.cfg.OnReady != nil {
		m.cfg.OnReady()
	}
}

// nextDeadline returns when the next timed step is due. Watchdog, drain
// and rollout deadlines are checked on the loop's regular tick.
func (m *Master) nextDeadline() (at time.Time, ok bool) {
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if m.state.stopping {
		if !m.state.killedAll {
			consider(m.state.stopDeadline)
		}
		return at, ok
	}
	for _, s := range m.state.slots {
		if s.worker == nil && !s.restartAt.IsZero() {
			consider(s.restartAt)
		}
	}
	for _, w := range m.state.workers {
		if !w.ready && !w.killed && w.role != retiring {
			consider(w.started.Add(m.cfg.StartTimeout))
		}
	}
	return at, ok
}
