//go:build linux

package cmd

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
)

// runWorker is a worker process of slot: it serves reg's methods with the
// settings its master resolved, and runs the extensions' services.
func runWorker(s *settings, slot int, reg *rpc.Registry, stderr io.Writer) int {
	if err := s.check(); err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	logOut := newLogOutput(&s.options, stderr)
	log := newLogger(&s.options, logOut).With(zap.String("role", "worker"), zap.Int("slot", slot), zap.Int("pid", os.Getpid()))
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush
	if err := disableCoreDumps(); err != nil {
		log.Warn("core dumps stay on", zap.Error(err))
	}
	if err := serveWorker(s, slot, reg, logOut, log); err != nil {
		log.Error("worker failed", zap.Error(err))
		return 1
	}
	return 0
}

// serveWorker serves until the worker has drained.
func serveWorker(s *settings, slot int, reg *rpc.Registry, logOut *logOutput, log *zap.Logger) error {
	c := newChild(s, logOut, log)
	cfg := s.workerConfig(c.heartbeat)
	rec, err := workerRecorder()
	if err != nil {
		return err
	}
	cfg.Metrics = rec
	access, err := s.observe.workerAccessLog(slot, logOut.fallback, log)
	if err != nil {
		return err
	}
	if access != nil {
		cfg.AccessLog = access
		defer access.close()
		c.access = access
	}
	cfg.ManageMemoryLimit = os.Getenv("GOMEMLIMIT") == ""
	cfg.PoolSize = spareLoopP(cfg.PoolSize)
	w, err := worker.New(cfg, reg, log)
	if err != nil {
		return err
	}
	stop, err := startExtensions(s.ext, WorkerInfo{Slot: slot, PoolSize: cfg.PoolSize, Log: log})
	if err != nil {
		return err
	}
	defer stop()
	defer startCPUProfile(s.cpuProfileDir, slot, log)()
	return c.serve(w)
}

// child is a worker process's end of its contract with the master (see
// package master): it serves the inherited socket at master.ListenFD,
// writes ready and then a heartbeat per loop tick on the status pipe at
// master.StatusFD, acts on the master's signals, and drains once the master
// is gone.
type child struct {
	log    *zap.Logger
	logOut *logOutput
	w      *worker.Worker
	limit  uint64     // requests before asking to be recycled; 0 never
	access *accessLog // nil without -access-log
}

// orphanCheck is how often a worker checks that its master is still alive.
const orphanCheck = time.Second

// newChild prepares the status pipe; s sets -max-requests and its jitter.
func newChild(s *settings, logOut *logOutput, log *zap.Logger) *child {
	if err := unix.SetNonblock(master.StatusFD, true); err != nil {
		log.Warn("status pipe", zap.Error(os.NewSyscallError("setnonblock", err)))
	}
	c := &child{log: log, logOut: logOut}
	if s.maxRequests > 0 {
		c.limit = uint64(s.maxRequests + rand.IntN(s.maxRequestsJitter+1))
	}
	return c
}

// serve runs w on the slot's socket until it has drained. w's Config must
// have c.heartbeat as its Heartbeat.
func (c *child) serve(w *worker.Worker) error {
	c.w = w
	c.handleSignals()
	go c.stopWhenOrphaned()
	return w.Serve(master.ListenFD, c.ready)
}

// handleSignals acts on the master's signals: SIGTERM drains,
// master.RetireSignal drains taking the socket's accept queue along, and
// master.ReopenSignal reopens the logs. The signals a terminal sends to its
// whole process group are the master's to act on, so the worker ignores
// them, and SIGPIPE too: a log reader gone away fails a write, not the
// worker.
func (c *child) handleSignals() {
	signal.Ignore(unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPIPE)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, unix.SIGTERM, master.RetireSignal, master.ReopenSignal)
	go func() {
		for sig := range sigs {
			switch sig {
			case unix.SIGTERM:
				c.log.Info("stop signal", zap.Stringer("signal", sig))
				c.w.Shutdown()
			case master.RetireSignal:
				c.log.Info("retire signal", zap.Stringer("signal", sig))
				c.w.Retire()
			case master.ReopenSignal:
				// A reopen that hangs on a stalled disk must not hold
				// up a stop signal behind it.
				go c.reopenLog()
			}
		}
	}()
}

// reopenLog reopens the log file and the access log on master.ReopenSignal.
func (c *child) reopenLog() {
	if err := c.logOut.reopen(); err != nil {
		c.log.Warn("reopen log failed", zap.Error(err))
	}
	if c.access != nil {
		if err := c.access.reopen(); err != nil {
			c.log.Warn("reopen access log failed", zap.Error(err))
		}
	}
}

// stopWhenOrphaned drains the worker once its master is gone (it has been
// re-parented), so a killed master never leaves workers serving on their own.
func (c *child) stopWhenOrphaned() {
	parent := os.Getppid()
	t := time.NewTicker(orphanCheck)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			c.log.Warn("master is gone; draining", zap.Int("master_pid", parent))
			c.w.Shutdown()
			return
		}
	}
}

func (c *child) ready() { c.write(master.StatusReady) }

// heartbeat runs on the loop goroutine (worker.Config.Heartbeat): a beat,
// or a recycle request once -max-requests (plus jitter) is reached.
func (c *child) heartbeat() {
	b := master.StatusHeartbeat
	if c.limit > 0 && c.w != nil && c.w.Stats().Requests >= c.limit {
		b = master.StatusRecycle
	}
	c.write(b)
}

// write never blocks the loop: a full pipe means the master is busy and
// will see the next byte.
func (c *child) write(b byte) {
	_, err := unix.Write(master.StatusFD, []byte{b})
	if err != nil && err != unix.EAGAIN && err != unix.EPIPE {
		c.log.Warn("write status pipe", zap.Error(os.NewSyscallError("write", err)))
	}
}
