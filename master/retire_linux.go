package master

import (
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// startRecycles starts a replacement for each serving worker that asked to
// be replaced; it drains once the replacement is ready
// (promoteReplacements). A slot waiting out a backoff waits for it.
func (m *Master) startRecycles(now time.Time) {
	if m.state.stopping {
		return
	}
	for _, s := range m.state.slots {
		w := s.worker
		if w == nil || !w.recycle || w.role != serving || s.replacement != nil || now.Before(s.restartAt) {
			continue
		}
		w.recycle = false
		m.log.Info("recycling worker", zap.Int("slot", s.index), zap.Int("pid", w.pid))
		s.replacement = m.spawnWorker(s, m.state.gen, &m.state.settings, replacement, now)
	}
}

// promoteReplacements makes each ready replacement its slot's serving
// worker and drains the one it replaces.
func (m *Master) promoteReplacements(now time.Time) {
	if m.state.stopping {
		return
	}
	for _, s := range m.state.slots {
		if s.replacement == nil || !s.replacement.ready {
			continue
		}
		old := s.worker
		s.worker, s.replacement = s.replacement, nil
		s.worker.role = serving
		s.everReady = true
		if old != nil {
			m.retireWorker(old, unix.SIGTERM, now)
		}
	}
}

// retireWorker tells w to drain with sig (SIGTERM, or RetireSignal when its
// socket is being closed) and sets its SIGKILL deadline.
func (m *Master) retireWorker(w *worker, sig unix.Signal, now time.Time) {
	timeout := m.state.settings.DrainTimeout
	w.role = retiring
	w.drainBy = now.Add(timeout)
	m.signalWorker(w, sig)
	m.log.Info("draining old worker", zap.Int("slot", w.slot.index), zap.Int("pid", w.pid),
		zap.Int("generation", w.gen), zap.Stringer("signal", sig), zap.Duration("timeout", timeout))
}

// retireSlot removes slot s: its workers drain and its socket closes
// without resetting the connections queued on it.
//
// Closing the last copy of a SO_REUSEPORT socket resets the connections in
// its accept queue, unless net.ipv4.tcp_migrate_req=1 makes the kernel move
// them to another socket of the group. With the sysctl on, the master closes
// its copy and the worker drains as usual. Without it, the master closes its
// copy and sends RetireSignal: the worker accepts everything queued, then
// closes the socket, and serves what it accepted to the end of its drain.
func (m *Master) retireSlot(s *slot, now time.Time) {
	sig := RetireSignal
	if kernelMigratesQueue() {
		sig = unix.SIGTERM
	}
	unix.Close(s.sock)
	if s.replacement != nil {
		m.retireWorker(s.replacement, sig, now)
		s.replacement = nil
	}
	if s.worker != nil {
		m.retireWorker(s.worker, sig, now)
		s.worker = nil
	}
	m.log.Info("slot removed", zap.Int("slot", s.index), zap.Stringer("worker_signal", sig))
}
