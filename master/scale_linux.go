package master

import (
	"time"

	"go.uber.org/zap"
)

// addWorker (SIGTTIN) adds a slot with its own socket; spawnDue starts its
// worker in the same step.
func (m *Master) addWorker(now time.Time) {
	socks, err := bindMore(m.Addr().String(), 1)
	if err != nil {
		m.log.Warn("add worker failed", zap.Error(err))
		return
	}
	s := &slot{index: len(m.state.slots), sock: socks[0], restartAt: now}
	m.state.slots = append(m.state.slots, s)
	m.state.settings.Workers = len(m.state.slots)
	m.log.Info("adding worker", zap.Int("slot", s.index), zap.Int("workers", len(m.state.slots)))
}

// removeWorker (SIGTTOU) retires the last slot, keeping at least one.
func (m *Master) removeWorker(now time.Time) {
	n := len(m.state.slots)
	if n <= 1 {
		m.log.Warn("not removing the last worker")
		return
	}
	s := m.state.slots[n-1]
	m.state.slots = m.state.slots[:n-1]
	m.state.settings.Workers = n - 1
	m.log.Info("removing worker", zap.Int("slot", s.index), zap.Int("workers", n-1))
	m.retireSlot(s, now)
}
