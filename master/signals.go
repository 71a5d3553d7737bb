package master

import (
	"os"
	"os/signal"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// action is a set of things the loop has been asked to do.
type action uint16

const (
	actReap         action = 1 << iota // reap exited children
	actStop                            // stop gracefully
	actReload                          // roll out a new generation with the reloaded config
	actUpgrade                         // re-execute the master's binary in place
	actReopen                          // reopen log files
	actAddWorker                       // one more slot
	actRemoveWorker                    // one slot fewer
)

// signalActions is the master's one signal table. Receiving a signal only
// records its action; the loop carries it out in runSteps.
var signalActions = map[os.Signal]action{
	unix.SIGCHLD: actReap,
	unix.SIGTERM: actStop,
	unix.SIGINT:  actStop,
	unix.SIGQUIT: actStop,
	unix.SIGHUP:  actReload,
	unix.SIGUSR2: actUpgrade,
	unix.SIGUSR1: actReopen,
	unix.SIGTTIN: actAddWorker,
	unix.SIGTTOU: actRemoveWorker,
}

// signalBuffer is how many signals wait for the loop before more are
// dropped; the kernel merges a pending signal with its repeats anyway.
const signalBuffer = 32

// CatchSignals starts catching the signals a master acts on and returns the
// channel that buffers them, for Config.Signals. A process that will run a
// Master calls it as early as it can: until then SIGHUP, SIGINT and SIGTERM
// kill it, whereas a signal caught here is acted on once Run starts. The
// caller stops it (signal.Stop) once Run has returned.
func CatchSignals() chan os.Signal {
	sigs := make(chan os.Signal, signalBuffer)
	signal.Notify(sigs, handledSignals()...)
	return sigs
}

func handledSignals() []os.Signal {
	sigs := make([]os.Signal, 0, len(signalActions))
	for sig := range signalActions {
		sigs = append(sigs, sig)
	}
	return sigs
}

func (m *Master) actionFor(sig os.Signal) action {
	act, ok := signalActions[sig]
	if !ok {
		m.log.Debug("ignoring signal", zap.Stringer("signal", sig))
	} else if act != actReap {
		m.log.Info("signal received", zap.Stringer("signal", sig))
	}
	return act
}

// runSteps carries out the pending actions, then the timed steps, always in
// this order: reap before deciding on restarts, stop before spawning.
func (m *Master) runSteps(pending action, now time.Time) {
	m.runActions(pending, now)
	m.forgetFailures(now)
	m.killUnready(now)
	m.killHung(now)
	m.killDrained(now)
	m.spawnDue(now)
	m.killStragglers(now)
}

// runActions carries out the actions in pending. Reload, upgrade and
// scaling wait while a rollout runs (see runDeferred). The upgrade comes
// last, so that a successful exec leaves no other action of pending undone.
func (m *Master) runActions(pending action, now time.Time) {
	if pending&actReap != 0 {
		m.reapChildren(now)
	}
	if pending&actStop != 0 {
		m.stopWorkers(now)
	}
	if m.state.stopping {
		return
	}
	if pending&actReopen != 0 {
		m.reopenLogs()
	}
	if pending&actReload != 0 {
		m.reload(now)
	}
	if pending&actAddWorker != 0 {
		m.addWorker(now)
	}
	if pending&actRemoveWorker != 0 {
		m.removeWorker(now)
	}
	if pending&actUpgrade != 0 {
		// Signals that arrived while the upgrade ran and did not go to
		// the new image.
		if late := m.upgrade(now); late != 0 {
			m.runActions(late, time.Now())
		}
	}
}

// drainSignals takes the signals waiting in the channel without blocking.
func (m *Master) drainSignals() []os.Signal {
	var sigs []os.Signal
	for range signalBuffer {
		select {
		case sig := <-m.signals:
			sigs = append(sigs, sig)
		default:
			return sigs
		}
	}
	return sigs
}

// actionsFor returns what sigs ask for.
func (m *Master) actionsFor(sigs []os.Signal) action {
	var act action
	for _, sig := range sigs {
		act |= m.actionFor(sig)
	}
	return act
}

// reopenLogs (SIGUSR1) reopens the master's log, then the workers'.
func (m *Master) reopenLogs() {
	if m.cfg.Reopen != nil {
		if err := m.cfg.Reopen(); err != nil {
			m.log.Error("reopen log failed", zap.Error(err))
			return
		}
	}
	// A worker not ready yet may not handle the signal yet; it opens the
	// log after the rotation anyway.
	var pids []int
	for _, w := range m.state.workers {
		if w.ready {
			m.signalWorker(w, ReopenSignal)
			pids = append(pids, w.pid)
		}
	}
	m.log.Info("log reopened", zap.Ints("workers", pids))
}
