package master

import (
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// action is a set of things the loop has been asked to do.
type action uint8

const (
	actReap   action = 1 << iota // reap exited children
	actStop                      // stop gracefully
	actReload                    // reload (not supported yet)
)

// signalActions is the master's one signal table. Receiving a signal only
// records its action; the loop carries it out in runSteps.
var signalActions = map[os.Signal]action{
	unix.SIGCHLD: actReap,
	unix.SIGTERM: actStop,
	unix.SIGINT:  actStop,
	unix.SIGQUIT: actStop,
	unix.SIGHUP:  actReload,
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
	}
	return act
}

// runSteps carries out the pending actions, then the timed steps, always in
// this order: reap before deciding on restarts, stop before spawning.
func (m *Master) runSteps(pending action, now time.Time) {
	if pending&actReap != 0 {
		m.reapChildren(now)
	}
	if pending&actStop != 0 {
		m.stopWorkers(now)
	}
	if pending&actReload != 0 {
		m.log.Warn("reload is not supported yet; ignoring")
	}
	m.forgetFailures(now)
	m.killUnready(now)
	m.spawnDue(now)
	m.killStragglers(now)
}
