package master

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
)

// reapInterval is how often the master reaps children without waiting for
// SIGCHLD, in case a signal was dropped.
const reapInterval = time.Second

// masterRunning guards the process-wide resources a running Master owns:
// it reaps every child of the process and handles its signals.
var masterRunning atomic.Bool

// WorkerInfo describes one worker slot.
type WorkerInfo struct {
	Slot       int
	Pid        int       // 0 while the slot has no running worker
	Ready      bool      // the running worker has reported ready
	Started    time.Time // when the running worker was started
	Failures   int       // consecutive failures of the slot's workers
	Generation int       // the running worker's generation (1 at start)
}

// Master binds the sockets, runs the worker processes and supervises them.
type Master struct {
	cfg     Config
	log     *zap.Logger
	backoff backoff
	sys     sys

	signals    chan os.Signal  // delivered and injected signals
	pipeEvents chan pipeEvent  // from the pipe watchers
	done       chan struct{}   // closed when Run returns
	running    atomic.Bool     // Run has been called
	mu         sync.Mutex      // guards addr, infos, gen and metrics
	addr       net.Addr        // set once the sockets are bound
	infos      []WorkerInfo    // snapshot published by the loop
	gen        int             // published generation
	metrics    *metrics.Region // shared counters; nil when off
	state      supervisorState
}

// supervisorState is the loop's own state; only the Run goroutine touches it.
type supervisorState struct {
	settings        Generation      // the serving generation's settings
	slots           []*slot         // the serving generation's slots
	workers         map[int]*worker // every running worker process by pid
	gen             int             // the serving generation
	roll            *rollout        // the generation being started, if any
	check           *binaryCheck    // the upgrade's check run, if any
	requested       action          // asked for by signals, not carried out yet
	slotsToAdd      int             // SIGTTINs received, not carried out yet
	slotsToDrop     int             // SIGTTOUs received, not carried out yet
	nextSeq         uint64          // identifies spawned children
	everReady       bool            // some worker has reported ready
	announced       bool            // "master ready" logged and OnReady called
	stopping        bool            // a graceful stop has begun
	stopDeadline    time.Time       // when stragglers get SIGKILL
	termAt          time.Time       // when a stopping master sends SIGTERM
	termSent        bool            // the workers have been sent SIGTERM
	stopHeld        <-chan struct{} // from Hooks.HoldStop; nil once released
	stopReleased    bool            // Hooks.HoldStop's channel has closed
	reportedWorkers int             // slot count last given to OnWorkers
	killedAll       bool            // stragglers have been sent SIGKILL
	fatal           error           // Run's result once the workers are gone
}

// New checks cfg and returns a Master ready to Run. log may be nil.
func New(cfg Config, log *zap.Logger) (*Master, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	sigs := cfg.Signals
	if sigs == nil {
		sigs = make(chan os.Signal, signalBuffer)
	}
	return &Master{
		cfg:        cfg,
		log:        log,
		backoff:    defaultBackoff,
		sys:        realSys{},
		signals:    sigs,
		pipeEvents: make(chan pipeEvent),
		done:       make(chan struct{}),
	}, nil
}

// Addr returns the address the workers listen on, or nil before Run has
// bound it. Safe to call from any goroutine.
func (m *Master) Addr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addr
}

// Workers returns the state of every slot. Safe to call from any goroutine.
func (m *Master) Workers() []WorkerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.infos)
}

// Generation returns the serving generation: 1 at start, one more for each
// completed reload or upgrade. Safe to call from any goroutine.
func (m *Master) Generation() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// Signal acts on sig as if the master process had received it. Safe to call
// from any goroutine; it returns at once if Run has returned.
func (m *Master) Signal(sig os.Signal) {
	select {
	case m.signals <- sig:
	case <-m.done:
	}
}

// Run binds the sockets, starts the workers and supervises them until ctx
// is cancelled or a stop signal arrives. It returns nil after a graceful
// stop, and an error when the sockets cannot be bound or no worker could
// start. Run may be called once.
func (m *Master) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("run master: already started")
	}
	defer close(m.done)
	if !masterRunning.CompareAndSwap(false, true) {
		return errors.New("run master: another master runs in this process")
	}
	defer masterRunning.Store(false)
	if ctx.Err() != nil {
		return nil
	}
	if m.cfg.Signals == nil {
		signal.Notify(m.signals, handledSignals()...)
		defer signal.Stop(m.signals)
	}
	defer m.closeAllSockets()
	defer m.closeMetrics()
	if err := m.setUp(time.Now()); err != nil {
		return err
	}
	return m.loop(ctx)
}

// setUp binds the sockets, or adopts those of the image that executed
// this one, and schedules the first workers.
func (m *Master) setUp(now time.Time) error {
	m.state.workers = make(map[int]*worker)
	m.state.gen = 1
	m.state.settings = m.cfg.Generation
	m.state.requested = actReap // leftovers inherited from before we started
	if m.cfg.Inherited != "" {
		return m.adopt(m.cfg.Inherited, now)
	}
	if err := m.setUpMetrics(-1); err != nil {
		return err
	}
	socks, addr, err := bindSockets(m.state.settings.Listen, m.state.settings.Workers)
	if err != nil {
		return err
	}
	m.setAddr(addr)
	m.state.slots = newSlots(socks, now)
	return nil
}

func (m *Master) setAddr(addr net.Addr) {
	m.mu.Lock()
	m.addr = addr
	m.mu.Unlock()
}

// closeAllSockets closes the sockets of the slots and of an unfinished
// rollout when Run returns.
func (m *Master) closeAllSockets() {
	for _, s := range m.state.slots {
		unix.Close(s.sock)
	}
	if r := m.state.roll; r != nil {
		closeSockets(r.newSocks)
	}
}

// loop is the master's only event loop. Each event only updates the state
// and records what it asks for (events_linux.go); step then acts on it,
// once per turn.
func (m *Master) loop(ctx context.Context) error {
	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	ctxDone := ctx.Done()
	for {
		m.step(time.Now())
		m.publish()
		if m.finished() {
			return m.state.fatal
		}
		select {
		case sig := <-m.signals:
			m.onSignal(sig)
		case ev := <-m.pipeEvents:
			m.onPipe(ev)
		case <-ctxDone:
			ctxDone = nil
			m.request(actStop)
		case <-tick.C:
			m.request(actReap)
		case <-m.state.stopHeld:
			m.onStopReleased()
		case <-m.armWake(wake):
		}
	}
}

// finished reports whether a stop has begun and every child is gone.
func (m *Master) finished() bool {
	return m.state.stopping && len(m.state.workers) == 0 && m.state.check == nil
}

// publish makes the slots' state visible to Workers.
func (m *Master) publish() {
	infos := make([]WorkerInfo, len(m.state.slots))
	for i, s := range m.state.slots {
		infos[i] = s.info()
	}
	m.mu.Lock()
	m.infos, m.gen = infos, m.state.gen
	m.mu.Unlock()
}

// armWake sets wake for the next timed step and returns its channel, or nil
// when nothing is due.
func (m *Master) armWake(wake *time.Timer) <-chan time.Time {
	at, ok := m.nextDeadline(time.Now())
	if !ok {
		wake.Stop()
		return nil
	}
	wake.Reset(max(time.Until(at), 0))
	return wake.C
}

// masterPid is logged with master-wide events.
func masterPid() zap.Field { return zap.Int("pid", unix.Getpid()) }
