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
// then the old one drains (commit). If any new worker fails, the new
// generation is killed and the old one stays (abortRollout).
type rollout struct {
	gen      int
	cfg      Config
	why      string
	slots    []*slot  // the new generation's slots
	newSocks []int    // sockets bound for it; closed if it is aborted
	addr     net.Addr // the address the new slots listen on
}

// reload (SIGHUP) asks for the next configuration and rolls it out.
func (m *Master) reload(now time.Time) {
	if m.state.roll != nil {
		m.state.deferred |= actReload
		return
	}
	m.reloading()
	cfg := m.cfg
	if m.cfg.Reload != nil {
		next, err := m.cfg.Reload()
		if err == nil {
			next, err = m.adoptSettings(next)
		}
		if err != nil {
			m.log.Error("reload failed; keeping the running generation", zap.Error(err))
			m.reloaded(err)
			return
		}
		cfg = next
	}
	m.startRollout(cfg, "reload", now)
}

// adoptSettings takes next's worker settings and keeps the master's own.
func (m *Master) adoptSettings(next Config) (Config, error) {
	if next.Env == nil {
		next.Env = m.cfg.Env
	}
	next.Path, next.Stdout, next.Stderr, next.Signals = m.cfg.Path, m.cfg.Stdout, m.cfg.Stderr, m.cfg.Signals
	next.Reload, next.Reopen, next.CheckArgs, next.Inherited = m.cfg.Reload, m.cfg.Reopen, m.cfg.CheckArgs, ""
	next.OnReady, next.OnStopping = m.cfg.OnReady, m.cfg.OnStopping
	next.OnReloading, next.OnReloaded = m.cfg.OnReloading, m.cfg.OnReloaded
	return next.withDefaults()
}

// reloading calls the OnReloading hook.
func (m *Master) reloading() {
	if m.cfg.OnReloading != nil {
		m.cfg.OnReloading()
	}
}

// reloaded calls the OnReloaded hook, unless a stop has begun.
func (m *Master) reloaded(err error) {
	if m.cfg.OnReloaded != nil && !m.state.stopping {
		m.cfg.OnReloaded(err)
	}
}

// startRollout binds what the new configuration needs and starts its
// workers. The running generation is untouched until they are all ready.
func (m *Master) startRollout(cfg Config, why string, now time.Time) {
	r := &rollout{gen: m.state.gen + 1, cfg: cfg, why: why}
	if err := m.bindRollout(r); err != nil {
		m.log.Error(why+" failed; keeping the running generation", zap.Error(err))
		m.reloaded(err)
		return
	}
	m.state.roll = r
	m.log.Info("starting new generation", zap.String("reason", why), zap.Int("generation", r.gen),
		zap.Int("workers", len(r.slots)), zap.Stringer("addr", r.addr))
	for _, s := range r.slots {
		s.worker = m.spawnWorker(s, r.gen, &r.cfg, incoming, now)
		if s.worker == nil {
			m.abortRollout(errors.New("a new worker could not be started"))
			return
		}
	}
}

// bindRollout gives r one socket per slot: on the same address, the running
// slots' sockets, plus new ones for added slots; on a new address, all new.
func (m *Master) bindRollout(r *rollout) error {
	var socks []int
	if r.cfg.Listen == m.cfg.Listen {
		r.addr = m.Addr()
		for _, s := range m.state.slots[:min(len(m.state.slots), r.cfg.Workers)] {
			socks = append(socks, s.sock)
		}
		more, err := bindMore(r.addr.String(), r.cfg.Workers-len(socks))
		if err != nil {
			return fmt.Errorf("add sockets: %w", err)
		}
		socks, r.newSocks = append(socks, more...), more
	} else {
		all, addr, err := bindSockets(r.cfg.Listen, r.cfg.Workers)
		if err != nil {
			return err
		}
		socks, r.newSocks, r.addr = all, all, addr
	}
	r.slots = newSlots(socks, time.Time{})
	return nil
}

// commitIfReady finishes the rollout once every new worker is ready: the
// new slots take over and the old generation drains.
func (m *Master) commitIfReady(now time.Time) {
	r := m.state.roll
	if r == nil || m.state.stopping {
		return
	}
	for _, s := range r.slots {
		if s.worker == nil || !s.worker.ready {
			return
		}
	}
	old := m.state.slots
	for _, s := range r.slots {
		s.worker.role = serving
		s.everReady = true
	}
	m.state.everReady = true
	m.state.roll, m.state.slots, m.state.gen = nil, r.slots, r.gen
	m.cfg = r.cfg
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
	m.announceReady() // if the first generation never was
	m.reloaded(nil)
	m.runDeferred(now)
}

// retireWorkers drains the workers of an old slot whose socket lives on.
func (m *Master) retireWorkers(s *slot, now time.Time) {
	for _, w := range []*worker{s.next, s.worker} {
		if w != nil {
			m.retireWorker(w, unix.SIGTERM, now)
		}
	}
}

// abortRollout kills the new generation and keeps the running one.
func (m *Master) abortRollout(err error) {
	r := m.state.roll
	if r == nil {
		return
	}
	m.state.roll = nil
	for _, s := range r.slots {
		if w := s.worker; w != nil {
			w.role = retiring
			m.kill(w)
		}
	}
	closeSockets(r.newSocks)
	m.log.Error(r.why+" failed; keeping the running generation", zap.Int("generation", r.gen), zap.Error(err))
	m.reloaded(err)
	m.runDeferred(time.Now())
}

// runDeferred carries out the actions that waited for a rollout to end.
func (m *Master) runDeferred(now time.Time) {
	pending := m.state.deferred
	m.state.deferred = 0
	if pending != 0 {
		m.runActions(pending, now)
	}
}
