package master

import (
	"errors"
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

// announceReady logs "master ready" and calls OnReady once every slot's
// first worker has reported ready.
func (m *Master) announceReady() {
	if !m.readyToAnnounce() {
		return
	}
	m.state.announced = true
	m.log.Info("master ready", zap.Stringer("addr", m.Addr()),
		zap.Int("workers", len(m.state.slots)), masterPid())
	if m.cfg.Hooks.OnReady != nil {
		m.cfg.Hooks.OnReady()
	}
}

// readyToAnnounce reports whether announceReady is due: every slot's first
// worker has been ready, and neither the announcement nor a stop happened.
func (m *Master) readyToAnnounce() bool {
	if m.state.announced || m.state.stopping {
		return false
	}
	for _, s := range m.state.slots {
		if !s.everReady {
			return false
		}
	}
	return true
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
	timeout := m.state.settings.StartTimeout
	if m.state.stopping {
		return
	}
	for _, w := range m.state.workers {
		if w.ready || w.killed || w.role == retiring || now.Before(w.started.Add(timeout)) {
			continue
		}
		m.log.Warn("worker not ready in time; killing", zap.Int("slot", w.slot.index),
			zap.Int("pid", w.pid), zap.Duration("timeout", timeout))
		m.kill(w)
	}
}

// abortGrace is how long a hung worker has, after SIGABRT, to write its
// goroutines' stacks and exit before it is sent SIGKILL.
const abortGrace = 2 * time.Second

// abortHung is the watchdog: it sends SIGABRT to ready workers that have
// sent no status byte for WorkerTimeout, so that a Go worker dumps its
// goroutines' stacks on its stderr (with GOTRACEBACK=all) as it dies;
// killAborted sends SIGKILL after abortGrace. They are then replaced like a
// crash.
func (m *Master) abortHung(now time.Time) {
	timeout := m.state.settings.WorkerTimeout
	if timeout <= 0 || m.state.stopping {
		return
	}
	for _, w := range m.state.workers {
		if !w.ready || w.killed || !w.killAt.IsZero() || now.Sub(w.lastBeat) < timeout {
			continue
		}
		m.log.Warn("worker timed out; killing", zap.Int("slot", w.slot.index), zap.Int("pid", w.pid),
			zap.Duration("silent", now.Sub(w.lastBeat)), zap.Duration("timeout", timeout),
			zap.Stringer("signal", unix.SIGABRT), zap.Duration("sigkill_after", abortGrace))
		m.countMissedBeat(w.slot.index)
		w.killAt = now.Add(abortGrace)
		m.signalWorker(w, unix.SIGABRT)
	}
}

// killAborted sends SIGKILL to the workers that abortHung sent SIGABRT and
// that have not exited within abortGrace.
func (m *Master) killAborted(now time.Time) {
	for _, w := range m.state.workers {
		if !w.killAt.IsZero() && !w.killed && !now.Before(w.killAt) {
			m.log.Warn("timed-out worker still running after SIGABRT; killing", zap.Int("pid", w.pid),
				zap.Duration("grace", abortGrace))
			m.kill(w)
		}
	}
}

// killDrained sends SIGKILL to retiring workers past their drain deadline.
func (m *Master) killDrained(now time.Time) {
	for _, w := range m.state.workers {
		if w.role == retiring && !w.killed && !now.Before(w.drainBy) {
			m.log.Warn("old worker did not drain in time; killing", zap.Int("pid", w.pid),
				zap.Duration("timeout", m.state.settings.DrainTimeout))
			m.kill(w)
		}
	}
}

func (m *Master) kill(w *worker) {
	w.killed = true
	m.signalWorker(w, unix.SIGKILL)
}

// spawnDue starts a worker in every empty slot whose restart time has come.
func (m *Master) spawnDue(now time.Time) {
	for _, s := range m.state.slots {
		if m.state.stopping || m.state.fatal != nil { // a failed spawn may have given up
			return
		}
		if s.worker == nil && !s.restartAt.IsZero() && !now.Before(s.restartAt) {
			s.restartAt = time.Time{}
			s.worker = m.spawnWorker(s, m.state.gen, &m.state.settings, serving, now)
		}
	}
}

// stopWorkers begins a graceful stop: no more restarts, a deadline for
// stragglers, and SIGTERM to every worker after Config.StopDelay, or once
// Hooks.HoldStop releases it (termWorkers). A running upgrade check is
// killed.
func (m *Master) stopWorkers(now time.Time) {
	if m.state.stopping {
		return
	}
	timeout := m.state.settings.ShutdownTimeout
	m.state.stopping = true
	m.state.stopDeadline = now.Add(timeout)
	m.state.termAt = now.Add(min(m.cfg.StopDelay, timeout/2))
	if m.cfg.Hooks.OnStopping != nil {
		m.cfg.Hooks.OnStopping()
	}
	if m.cfg.Hooks.HoldStop != nil {
		m.state.stopHeld = m.cfg.Hooks.HoldStop()
	}
	m.cancelCheck()
	switch {
	case m.cfg.Hooks.HoldStop != nil && m.cfg.StopDelay > 0:
		m.log.Info("stopping: workers serve on until the stop is released", masterPid(),
			zap.Duration("at_most", m.state.termAt.Sub(now)))
	case m.cfg.StopDelay > 0:
		m.log.Info("stopping: workers serve on until the stop delay", masterPid(),
			zap.Duration("delay", m.state.termAt.Sub(now)))
	}
	m.termWorkers(now)
}

// termWorkers sends SIGTERM to every worker once a stop's delay is over
// or its hold released.
func (m *Master) termWorkers(now time.Time) {
	if !m.state.stopping || m.state.termSent || now.Before(m.state.termAt) && !m.state.stopReleased {
		return
	}
	m.state.termSent = true
	// The workers of a rollout get SIGTERM too; one that reports ready
	// now no longer completes it (endRollout).
	pids := m.signalWorkers(unix.SIGTERM)
	m.log.Info("stopping workers", masterPid(), zap.Ints("pids", pids),
		zap.Duration("timeout", m.state.stopDeadline.Sub(now)))
}

// reportWorkers calls OnWorkers once the master is ready, and again when
// the serving slot count has changed since.
func (m *Master) reportWorkers() {
	n := len(m.state.slots)
	if !m.state.announced || m.state.stopping || n == m.state.reportedWorkers {
		return
	}
	m.state.reportedWorkers = n
	if m.cfg.Hooks.OnWorkers != nil {
		m.cfg.Hooks.OnWorkers(n)
	}
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
			zap.Duration("timeout", m.state.settings.ShutdownTimeout))
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
