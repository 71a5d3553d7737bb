package master

import (
	"time"

	"go.uber.org/zap"
)

// addWorker (SIGTTIN) adds a slot for each SIGTTIN received, each with its
// own socket; spawnDue starts their workers in the same step.
func (m *Master) addWorker(now time.Time) {
	n := m.state.slotsToAdd
	m.state.slotsToAdd = 0
	for range n {
		if !m.addSlot(now) {
			return
		}
	}
}

// addSlot adds one slot and reports whether it could.
func (m *Master) addSlot(now time.Time) bool {
	socks, err := bindMore(m.Addr().String(), 1)
	if err != nil {
		m.log.Warn("add worker failed", zap.Error(err))
		return false
	}
	s := &slot{index: len(m.state.slots), sock: socks[0], restartAt: now}
	m.state.slots = append(m.state.slots, s)
	m.state.settings.Workers = len(m.state.slots)
	m.log.Info("adding worker", zap.Int("slot", s.index), zap.Int("workers", len(m.state.slots)))
	return true
}

// removeWorker (SIGTTOU) retires the last slot for each SIGTTOU received,
// keeping at least one.
func (m *Master) removeWorker(now time.Time) {
	n := m.state.slotsToDrop
	m.state.slotsToDrop = 0
	for range n {
		if !m.removeSlot(now) {
			return
		}
	}
}

// removeSlot retires the last slot and reports whether there was one to
// spare.
func (m *Master) removeSlot(now time.Time) bool {
	n := len(m.state.slots)
	if n <= 1 {
		m.log.Warn("not removing the last worker")
		return false
	}
	s := m.state.slots[n-1]
	m.state.slots = m.state.slots[:n-1]
	m.state.settings.Workers = n - 1
	m.log.Info("removing worker", zap.Int("slot", s.index), zap.Int("workers", n-1))
	m.retireSlot(s, now)
	return true
}
