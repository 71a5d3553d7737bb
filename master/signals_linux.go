package master

import (
	"os"
	"os/signal"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// signalActions is the master's one signal table. Receiving a signal only
// records its action (onSignal); step carries it out.
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

// signalBuffer is how many signals may wait for the loop; os/signal drops
// what arrives while it is full. It holds far more than a burst of
// separate deliveries: the kernel merges a signal with its repeats while
// one is pending, and the Go runtime while one waits for os/signal, so
// identical signals sent faster than they are read count once.
const signalBuffer = 256

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

// signalFor returns the lowest-numbered signal that asks for act, for
// handing a request over to the next image.
func signalFor(act action) (os.Signal, bool) {
	var found unix.Signal
	for sig, a := range signalActions {
		if n := sig.(unix.Signal); a == act && (found == 0 || n < found) {
			found = n
		}
	}
	return found, found != 0
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
