package master

import (
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// recycle starts a replacement for w, which asked to be replaced; w drains
// once the replacement is ready (promote).
func (m *Master) recycle(w *worker, now time.Time) {
	s := w.slot
	if w.role != serving || s.worker != w || s.next != nil || m.state.stopping || now.Before(s.restartAt) {
		return
	}
	m.log.Info("recycling worker", zap.Int("slot", s.index), zap.Int("pid", w.pid))
	s.next = m.spawnWorker(s, m.state.gen, &m.cfg, next, now)
}

// promote makes slot s's ready replacement its serving worker and drains
// the one it replaces.
func (m *Master) promote(s *slot, now time.Time) {
	old := s.worker
	s.worker, s.next = s.next, nil
	s.worker.role = serving
	s.everReady = true
	if old != nil {
		m.retireWorker(old, unix.SIGTERM, now)
	}
}

// retireWorker tells w to drain with sig (SIGTERM, or RetireSignal when its
// socket is being closed) and sets its SIGKILL deadline.
func (m *Master) retireWorker(w *worker, sig unix.Signal, now time.Time) {
	w.role = retiring
	w.drainBy = now.Add(m.cfg.DrainTimeout)
	m.signalWorker(w, sig)
	m.log.Info("draining old worker", zap.Int("slot", w.slot.index), zap.Int("pid", w.pid),
		zap.Int("generation", w.gen), zap.Stringer("signal", sig), zap.Duration("timeout", m.cfg.DrainTimeout))
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
	if s.next != nil {
		m.retireWorker(s.next, sig, now)
		s.next = nil
	}
	if s.worker != nil {
		m.retireWorker(s.worker, sig, now)
		s.worker = nil
	}
	m.log.Info("slot removed", zap.Int("slot", s.index), zap.Stringer("worker_signal", sig))
}

// addWorker (SIGTTIN) adds a slot with its own socket and worker.
func (m *Master) addWorker(now time.Time) {
	if m.state.roll != nil {
		m.state.deferred |= actAddWorker
		return
	}
	socks, err := bindMore(m.Addr().String(), 1)
	if err != nil {
		m.log.Warn("add worker failed", zap.Error(err))
		return
	}
	s := &slot{index: len(m.state.slots), sock: socks[0], restartAt: now}
	m.state.slots = append(m.state.slots, s)
	m.cfg.Workers = len(m.state.slots)
	m.log.Info("adding worker", zap.Int("slot", s.index), zap.Int("workers", m.cfg.Workers))
	m.spawnDue(now)
}

// removeWorker (SIGTTOU) retires the last slot, keeping at least one.
func (m *Master) removeWorker(now time.Time) {
	if m.state.roll != nil {
		m.state.deferred |= actRemoveWorker
		return
	}
	n := len(m.state.slots)
	if n <= 1 {
		m.log.Warn("not removing the last worker")
		return
	}
	s := m.state.slots[n-1]
	m.state.slots = m.state.slots[:n-1]
	m.cfg.Workers = n - 1
	m.log.Info("removing worker", zap.Int("slot", s.index), zap.Int("workers", m.cfg.Workers))
	m.retireSlot(s, now)
}
