package master

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// rollout is a new generation of workers being started. The running
// generation keeps serving until every new worker has reported ready;
// then the old one drains (commitRollout). If any new worker fails, the
// new generation is killed and the old one stays (abortRollout).
type rollout struct {
	gen      int
	settings Generation
	why      string
	slots    []*slot  // the new generation's slots
	newSocks []int    // sockets bound for it; closed if it is aborted
	addr     net.Addr // the address the new slots listen on
	failed   error    // why it is to be aborted; nil while it may succeed
}

// fail records the first reason r cannot complete.
func (r *rollout) fail(err error) {
	if r.failed == nil {
		r.failed = err
	}
}

// reload (SIGHUP) asks for the next generation's settings and rolls them
// out. A nil Env keeps the running generation's.
func (m *Master) reload(now time.Time) {
	m.reloading()
	next := m.state.settings
	if m.cfg.Reload != nil {
		var err error
		if next, err = m.cfg.Reload(); err == nil {
			if next.Env == nil {
				next.Env = m.state.settings.Env
			}
			next, err = next.withDefaults()
		}
		if err != nil {
			m.log.Error("reload failed; keeping the running generation", zap.Error(err))
			m.reloaded("reload", err)
			return
		}
	}
	m.startRollout(next, "reload", now)
}

// rollOutUpgrade rolls out the generation of the image an upgrade executed,
// which adopted the running workers.
func (m *Master) rollOutUpgrade(now time.Time) {
	m.reloading()
	m.startRollout(m.cfg.Generation, "upgrade", now)
}

// reloading calls the OnReloading hook.
func (m *Master) reloading() {
	if m.cfg.Hooks.OnReloading != nil {
		m.cfg.Hooks.OnReloading()
	}
}

// reloaded counts how the reload or upgrade (why) ended and calls the
// OnReloaded hook, unless a stop has begun.
func (m *Master) reloaded(why string, err error) {
	m.countReloaded(why, err)
	if m.cfg.Hooks.OnReloaded != nil && !m.state.stopping {
		m.cfg.Hooks.OnReloaded(err)
	}
}

// startRollout binds what the new generation needs and starts its workers.
// The running generation is untouched until they are all ready.
func (m *Master) startRollout(g Generation, why string, now time.Time) {
	r := &rollout{gen: m.state.gen + 1, settings: g, why: why}
	if g.Listen != m.state.settings.Listen {
		m.log.Warn("new generation moves the listen address", zap.String("reason", why),
			zap.String("old", m.state.settings.Listen), zap.String("new", g.Listen))
	}
	if err := m.bindRollout(r); err != nil {
		m.log.Error(why+" failed; keeping the running generation", zap.Error(err))
		m.reloaded(why, err)
		return
	}
	m.state.roll = r
	m.log.Info("starting new generation", zap.String("reason", why), zap.Int("generation", r.gen),
		zap.Int("workers", len(r.slots)), zap.Stringer("addr", r.addr))
	for _, s := range r.slots {
		s.worker = m.spawnWorker(s, r.gen, &r.settings, incoming, now)
		if s.worker == nil {
			r.fail(errors.New("a new worker could not be started"))
			return
		}
	}
}

// bindRollout gives r one socket per slot: on the same address, the running
// slots' sockets, plus new ones for added slots; on a new address, all new.
func (m *Master) bindRollout(r *rollout) error {
	want := r.settings.Workers
	if r.settings.Listen != m.state.settings.Listen {
		all, addr, err := bindSockets(r.settings.Listen, want)
		if err != nil {
			return err
		}
		r.slots, r.newSocks, r.addr = newSlots(all, time.Time{}), all, addr
		return nil
	}
	r.addr = m.Addr()
	var socks []int
	for _, s := range m.state.slots[:min(len(m.state.slots), want)] {
		socks = append(socks, s.sock)
	}
	more, err := bindMore(r.addr.String(), want-len(socks))
	if err != nil {
		return fmt.Errorf("add sockets: %w", err)
	}
	r.slots, r.newSocks = newSlots(append(socks, more...), time.Time{}), more
	return nil
}

// endRollout aborts a rollout that failed, or commits one whose workers
// are all ready. A stop that has begun leaves it to end with the workers.
func (m *Master) endRollout(now time.Time) {
	r := m.state.roll
	if r == nil || m.state.stopping {
		return
	}
	if r.failed != nil {
		m.abortRollout(r)
		return
	}
	for _, s := range r.slots {
		if s.worker == nil || !s.worker.ready {
			return
		}
	}
	m.commitRollout(r, now)
}

// commitRollout makes r's slots the serving ones and drains the old
// generation.
func (m *Master) commitRollout(r *rollout, now time.Time) {
	old := m.state.slots
	for _, s := range r.slots {
		s.worker.role = serving
		s.everReady = true
	}
	m.state.everReady = true
	m.state.roll, m.state.slots, m.state.gen, m.state.settings = nil, r.slots, r.gen, r.settings
	m.setAddr(r.addr)
	for i, s := range old {
		if i < len(r.slots) && r.slots[i].sock == s.sock {
			m.retireWorkers(s, now)
		} else {
			m.retireSlot(s, now)
		}
	}
	m.log.Info("new generation ready", zap.String("reason", r.why), zap.Int("generation", r.gen),
		zap.Int("workers", len(r.slots)), zap.Stringer("addr", r.addr))
	m.reloaded(r.why, nil)
}

// retireWorkers drains the workers of an old slot whose socket lives on.
func (m *Master) retireWorkers(s *slot, now time.Time) {
	for _, w := range []*worker{s.replacement, s.worker} {
		if w != nil {
			m.retireWorker(w, unix.SIGTERM, now)
		}
	}
}

// abortRollout kills r's workers and keeps the running generation.
func (m *Master) abortRollout(r *rollout) {
	m.state.roll = nil
	for _, s := range r.slots {
		if w := s.worker; w != nil {
			w.role = retiring
			m.kill(w)
		}
	}
	closeSockets(r.newSocks)
	m.log.Error(r.why+" failed; keeping the running generation", zap.Int("generation", r.gen), zap.Error(r.failed))
	m.reloaded(r.why, r.failed)
}
