package master

import (
	"time"
)

// action is a set of things the master has been asked to do.
type action uint16

const (
	actReap         action = 1 << iota // reap exited children
	actStop                            // stop gracefully
	actReopen                          // reopen log files
	actRollOut                         // roll out this image's generation after an upgrade
	actReload                          // roll out a new generation with the reloaded settings
	actAddWorker                       // one more slot
	actRemoveWorker                    // one slot fewer
	actUpgrade                         // check the binary at Path, then re-execute it
)

// requestOrder is the order in which step carries out requests: reap
// before deciding anything, stop before starting anything, the upgrade
// last. Each runs once however often it was asked for, except that
// addWorker and removeWorker carry out every slot counted (one per SIGTTIN
// or SIGTTOU received).
var requestOrder = []struct {
	act action
	run func(m *Master, now time.Time)
}{
	{actReap, (*Master).reapChildren},
	{actStop, (*Master).stopWorkers},
	{actReopen, func(m *Master, _ time.Time) { m.reopenLogs() }},
	{actRollOut, (*Master).rollOutUpgrade},
	{actReload, (*Master).reload},
	{actAddWorker, (*Master).addWorker},
	{actRemoveWorker, (*Master).removeWorker},
	{actUpgrade, (*Master).startCheck},
}

// waits reports whether act must wait before it runs. This is the one
// place that decides it: a reload, an upgrade or a change of the worker
// count waits while a generation rolls out; a reload or an upgrade also
// waits while a new binary is checked, so that it goes to the new image
// if that runs.
func (m *Master) waits(act action) bool {
	const forRollout = actRollOut | actReload | actUpgrade | actAddWorker | actRemoveWorker
	const forCheck = actReload | actUpgrade
	return (m.state.roll != nil && act&forRollout != 0) || (m.state.check != nil && act&forCheck != 0)
}

// due returns the requests that can be carried out now.
func (m *Master) due() action {
	var due action
	for _, r := range requestOrder {
		if m.state.requested&r.act != 0 && !m.waits(r.act) {
			due |= r.act
		}
	}
	return due
}

// step is the only code that acts: once per loop turn it carries out what
// the events recorded, then what the state and the clock make due, in this
// fixed order. No step calls another. The master is announced ready before
// the requests run, so that the generation an upgraded image adopted is
// ready (READY=1) before the rollout it requested begins (RELOADING=1).
func (m *Master) step(now time.Time) {
	m.announceReady()
	m.runRequests(now)
	m.endRollout(now)
	m.promoteReplacements(now)
	m.startRecycles(now)
	m.endCheck(now)
	m.forgetFailures(now)
	m.killUnready(now)
	m.abortHung(now)
	m.killAborted(now)
	m.killDrained(now)
	m.killCheck(now)
	m.spawnDue(now)
	m.termWorkers(now)
	m.killStragglers(now)
	m.reportWorkers()
}

// runRequests carries out the requests that need not wait, in
// requestOrder. Once a stop has begun, the others are dropped.
func (m *Master) runRequests(now time.Time) {
	for _, r := range requestOrder {
		if m.state.stopping && r.act != actReap {
			m.dropRequest(r.act)
			continue
		}
		if m.state.requested&r.act == 0 || m.waits(r.act) {
			continue
		}
		m.state.requested &^= r.act
		r.run(m, now)
	}
}

// nextDeadline returns when step is next due without an event. Watchdog
// and drain deadlines are checked on the loop's regular tick.
func (m *Master) nextDeadline(now time.Time) (at time.Time, ok bool) {
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if m.due() != 0 {
		consider(now) // a request a rollout or a check held back
	}
	if m.state.stopping {
		if !m.state.termSent {
			consider(m.state.termAt)
		}
		if !m.state.killedAll {
			consider(m.state.stopDeadline)
		}
		return at, ok
	}
	if (m.state.roll != nil && m.state.roll.failed != nil) || m.readyToAnnounce() {
		consider(now) // a rollout to abort, or a commit that made the master ready
	}
	if c := m.state.check; c != nil && now.Before(c.deadline) {
		consider(c.deadline)
	}
	for _, s := range m.state.slots {
		if s.worker == nil && !s.restartAt.IsZero() {
			consider(s.restartAt)
		}
		if w := s.worker; w != nil && w.recycle && s.replacement == nil && now.Before(s.restartAt) {
			consider(s.restartAt) // a recycle waiting out its slot's backoff
		}
	}
	for _, w := range m.state.workers {
		if !w.ready && !w.killed && w.role != retiring {
			consider(w.started.Add(m.state.settings.StartTimeout))
		}
		if !w.killAt.IsZero() && !w.killed {
			consider(w.killAt) // a timed-out worker's grace after SIGABRT
		}
	}
	return at, ok
}
