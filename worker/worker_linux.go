package worker

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

const (
	readBufferSize = 64 << 10              // the loop's shared read buffer
	maxKeptOutput  = 1 << 20               // shared output buffer kept between writes
	acceptBatch    = 64                    // accepts per wakeup, so connected clients are not starved
	lingerTimeout  = 2 * time.Second       // how long a closing conn may keep sending before it is cut
	maxTick        = time.Second           // longest wait between timeout sweeps
	minTick        = 10 * time.Millisecond // shortest wait between timeout sweeps
	drainTick      = lingerTimeout / 4     // sweep period while draining
	drainGrace     = time.Second           // a drain waits this long for a new conn's first request
	maxFreeQueues  = 64                    // answer queues kept for reuse
	maxFreeFrames  = 256                   // answer buffers kept for reuse
	maxKeptFrame   = 512                   // largest answer buffer kept

	// yieldEvery is how often the loop yields to the Go scheduler. The
	// runtime's monitor thread preempts a goroutine not rescheduled for
	// 10 ms (a signal, and its P taken from a system call) and then polls
	// every 20 µs again; a loop that only makes system calls is never
	// rescheduled otherwise.
	yieldEvery = 5 * time.Millisecond
)

// Worker serves requests on one event loop. Create it with New, run it with
// Serve, stop it with Shutdown.
type Worker struct {
	cfg      Config
	reg      *rpc.Registry
	log      *zap.Logger
	stats    counters
	waker    waker
	started  atomic.Bool
	shutdown atomic.Bool
	retire   atomic.Bool // drain takes the listener's accept queue first

	// Loop state: touched only by the goroutine running Serve.
	poll          *poller
	pool          *pool
	lfd           int  // listening socket; -1 once closed
	listening     bool // lfd is registered with epoll
	acceptResume  int64
	acceptPending bool
	acceptFailing bool    // accept4 failed and accepting paused; logged once per episode
	atConnLimit   bool    // accepting paused at Config.MaxConns
	limitHits     int     // times the limit was reached in this episode; see stopAtConnLimit
	conns         []*conn // indexed by descriptor
	nextID        uint64
	rbuf          []byte // shared read buffer
	out           []byte // shared output buffer, holding answers for outConn
	outConn       *conn
	rep           rpc.Reply
	req           protocol.Request
	touched       []*conn // conns with routed pool results, settled once each
	freeQueues    []*answerQueue
	freeFrames    [][]byte // answer buffers already written, for reuse
	seqFloor      uint64   // first slot number for the next answer queue
	deadlines     deadlineQueue
	batches       batchSet
	async         asyncSet
	timeoutFrame  []byte // the answer for a pooled request past its deadline
	epoch         time.Time
	now           int64 // coarse clock: nanoseconds since epoch, read once per wakeup
	lastSweep     int64
	lastYield     int64 // loop clock at the last runtime.Gosched; see yieldEvery
	tick          time.Duration
	draining      bool

	// The memory budget; see budget_linux.go.
	buffered     int  // bytes held for all conns
	peak         int  // highest buffered since memory was last released
	pressed      bool // buffered neared the budget: read no new frames
	budgetPaused bool // conns' read interest reflects pressed
	lastRelease  int64
	spare        spareBuffers // freed input buffers kept for reuse
	shed         []*conn      // shedUnsent's candidates, kept between sweeps
	memLimit     memoryLimit
	drops        dropLog
	meter        meterState
}

// New returns a Worker serving the handlers in reg. Zero Config fields take
// their defaults; a nil log discards logs.
func New(cfg Config, reg *rpc.Registry, log *zap.Logger) (*Worker, error) {
	if reg == nil {
		return nil, errors.New("new worker: nil registry")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new worker: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Worker{cfg: cfg, reg: reg, log: log, lfd: -1, tick: tickFor(cfg), drops: newDropLog(log)}
	w.waker.fd = -1
	return w, nil
}

// tickFor picks the sweep period: a quarter of the shortest timeout, within
// [minTick, maxTick].
func tickFor(cfg Config) time.Duration {
	tick := maxTick
	for _, d := range [...]time.Duration{cfg.IdleTimeout, cfg.ReadTimeout, cfg.WriteTimeout} {
		if d > 0 {
			tick = min(tick, d/4)
		}
	}
	return max(tick, minTick)
}

// Serve runs the event loop on listener fd lfd (a listening TCP socket; Serve
// sets it non-blocking and owns closing its copy). ready (may be nil) is called
// once the loop is running. Serve returns nil after a graceful Shutdown
// completes, or an error if the loop cannot run. A Worker serves once.
func (w *Worker) Serve(lfd int, ready func()) error {
	if !w.started.CompareAndSwap(false, true) {
		_ = unix.Close(lfd)
		return errors.New("serve: worker already served")
	}
	defer w.closeLoop()
	if err := w.openLoop(); err != nil {
		_ = unix.Close(lfd)
		return fmt.Errorf("serve: %w", err)
	}
	if err := w.openListener(lfd); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	w.log.Info("loop started", zap.Int("listen_fd", lfd), zap.Int("pool", w.cfg.PoolSize),
		zap.Int("queue", w.cfg.QueueSize), zap.Stringer("byte_order", w.cfg.ByteOrder),
		zap.Int("max_conns", w.cfg.MaxConns), zap.Int("max_buffer", w.cfg.MaxBuffer))
	if ready != nil {
		ready()
	}
	if w.shutdown.Load() {
		w.startDrain()
	}
	if err := w.run(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s := w.Stats()
	w.log.Info("loop stopped", zap.Uint64("accepted", s.Accepted),
		zap.Uint64("requests", s.Requests), zap.Uint64("answered", s.Answered), zap.Uint64("errors", s.Errors))
	return nil
}

// Shutdown starts a graceful drain: stop accepting, answer every request
// already read, close each connection at a frame boundary, then Serve returns.
// Safe from any goroutine, before or during Serve; later calls do nothing.
func (w *Worker) Shutdown() {
	if w.shutdown.CompareAndSwap(false, true) {
		w.waker.wake()
	}
}

// Stats returns the worker's counters. Safe from any goroutine.
func (w *Worker) Stats() Stats { return w.stats.snapshot() }

// Retire is Shutdown for a worker holding the last copy of its listening
// socket: before closing it, the drain accepts every connection queued on
// it, which closing would reset, past Config.MaxConns if need be, and ends
// each at a frame boundary like the rest. Safe from any goroutine.
func (w *Worker) Retire() {
	w.retire.Store(true)
	w.Shutdown()
}

// maxQueuedAccepts bounds acceptQueued on a socket that keeps receiving.
const maxQueuedAccepts = 1 << 16

// acceptQueued accepts until the listener's queue is empty, past
// Config.MaxConns and whether or not accepting is paused: closing the
// listener would reset what it leaves queued.
func (w *Worker) acceptQueued() {
	for range maxQueuedAccepts {
		switch err := w.acceptOne(); err {
		case nil:
		case unix.EAGAIN:
			return
		default:
			w.log.Warn("accept the queue before closing the listener", zap.Error(err))
			return
		}
	}
}

// openLoop creates the epoll instance, the wake-up eventfd, the offload pool and
// the shared buffers.
func (w *Worker) openLoop() error {
	p, err := newPoller()
	if err != nil {
		return err
	}
	w.poll = p
	if err := w.waker.open(); err != nil {
		return err
	}
	if err := w.poll.add(w.waker.fd, readEvents); err != nil {
		return err
	}
	w.rbuf = make([]byte, readBufferSize)
	w.out = make([]byte, 0, readBufferSize)
	w.epoch = time.Now()
	timeout := timeoutError(w.cfg.HandlerTimeout)
	w.timeoutFrame = protocol.AppendError(nil, w.cfg.ByteOrder, timeout)
	w.pool = newPool(w.cfg.PoolSize, w.cfg.QueueSize, w.cfg.ByteOrder, w.log, w.waker.wake, timeout)
	if w.cfg.ManageMemoryLimit {
		w.startMemoryLimit()
	}
	return nil
}

func (w *Worker) openListener(lfd int) error {
	w.lfd = lfd
	if err := unix.SetNonblock(lfd, true); err != nil {
		return os.NewSyscallError("setnonblock", err)
	}
	if err := w.poll.add(lfd, readEvents); err != nil {
		return err
	}
	w.listening = true
	return nil
}

// closeLoop releases everything openLoop and openListener acquired, and any
// connection still open. Close errors are ignored: nothing can act on them.
func (w *Worker) closeLoop() {
	for _, c := range w.conns {
		if c != nil {
			w.closeConn(c, "worker stopped")
		}
	}
	w.closeListener()
	w.closeAsync()
	if w.pool != nil {
		w.pool.stop()
	}
	if w.poll != nil {
		_ = w.poll.close()
	}
	if w.waker.fd >= 0 {
		_ = w.waker.close()
	}
	// The last turn's sweep and the closes above come after that turn's
	// publish: without this one they would never be counted.
	w.publishMetrics()
}

// run waits for events and handles them until a drain has closed every
// connection.
func (w *Worker) run() error {
	for !w.draining || w.stats.open.Load() > 0 {
		events, err := w.poll.wait(w.waitMillis())
		if err != nil {
			return err
		}
		w.now = w.clock()
		for _, ev := range events {
			w.handleEvent(ev)
		}
		w.runTimers()
		w.expireDeadlines()
		w.startBatches()
		w.startAsync()
		w.enforceBudget()
		w.publishMetrics()
		// Accept only after the whole batch: a descriptor closed above and
		// reused by accept4 must not receive an event meant for its old owner.
		if w.acceptPending {
			w.acceptPending = false
			w.acceptConns()
		}
		if time.Duration(w.now-w.lastYield) >= yieldEvery {
			w.lastYield = w.now
			runtime.Gosched()
		}
		if time.Duration(w.now-w.lastSweep) >= w.tick {
			w.sweep()
			if w.cfg.Heartbeat != nil {
				w.cfg.Heartbeat()
			}
		}
	}
	return nil
}

func (w *Worker) clock() int64 { return int64(time.Since(w.epoch)) }

// waitMillis is how long the next wait may block: until the next sweep is due.
func (w *Worker) waitMillis() int {
	left := min(w.tick-time.Duration(w.clock()-w.lastSweep), w.deadlineWait(), w.timerWait())
	if left <= 0 {
		return 0
	}
	return int((left + time.Millisecond - 1) / time.Millisecond)
}

func (w *Worker) handleEvent(ev unix.EpollEvent) {
	switch fd := int(ev.Fd); {
	case fd == w.lfd:
		// Deferred to the end of the batch; see run.
		w.acceptPending = true
	case fd == w.waker.fd:
		// Pooled answers are ready, or Shutdown was called.
		w.handleWake()
	default:
		if c := w.connAt(fd); c != nil {
			w.handleConn(c, ev.Events)
		} else {
			// A descriptor an Async handler watches, or one closed this turn.
			w.handleWatched(fd, ev.Events)
		}
	}
}

// handleWake runs when another goroutine signalled the eventfd: pooled answers
// are ready, or Shutdown was called.
func (w *Worker) handleWake() {
	w.waker.reset()
	w.routeResults()
	if w.shutdown.Load() && !w.draining {
		w.startDrain()
	}
}

// startDrain stops accepting and settles every connection, which closes those
// that owe nothing and limits reading on the rest to the current frame.
func (w *Worker) startDrain() {
	w.draining = true
	w.tick = min(w.tick, drainTick)
	if w.listening {
		w.stopListening()
	}
	if w.retire.Load() && w.lfd >= 0 {
		// The queue is taken right before the close, with no other system
		// call between them: a connection whose handshake completes in
		// between is reset (see package master).
		w.acceptQueued()
	}
	w.closeListener()
	w.log.Info("draining", zap.Int64("open", w.stats.open.Load()))
	for _, c := range w.conns {
		if c != nil {
			w.settle(c)
		}
	}
}

// closeListener removes the listener from epoll before closing it: other
// processes may hold the same socket, which would keep the registration alive.
func (w *Worker) closeListener() {
	if w.lfd < 0 {
		return
	}
	if w.listening {
		if err := w.poll.del(w.lfd); err != nil {
			w.log.Warn("stop listening", zap.Error(err))
		}
		w.listening = false
	}
	_ = unix.Close(w.lfd)
	w.lfd = -1
}

// acceptConns accepts up to acceptBatch connections. Level triggering brings
// the loop back for the rest.
func (w *Worker) acceptConns() {
	for range acceptBatch {
		if !w.listening {
			return
		}
		if w.stats.open.Load() >= int64(w.cfg.MaxConns) {
			w.stopAtConnLimit()
			return
		}
		switch err := w.acceptOne(); err {
		case nil:
		case unix.EAGAIN:
			return
		default:
			w.pauseAccept(err)
			return
		}
	}
}

// acceptOne accepts one connection. It returns unix.EAGAIN once the queue is
// empty, or the failure of accept4; an attempt that only has to be repeated
// (EINTR, ECONNABORTED) returns nil.
func (w *Worker) acceptOne() error {
	fd, sa, err := unix.Accept4(w.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	switch err {
	case nil:
		w.acceptRecovered()
		w.openConn(fd, sa)
		return nil
	case unix.EINTR, unix.ECONNABORTED:
		return nil
	case unix.EAGAIN:
		return err
	}
	return os.NewSyscallError("accept4", err)
}

// stopListening removes the listener from epoll, so connections wait in its
// queue rather than being accepted.
func (w *Worker) stopListening() {
	if err := w.poll.del(w.lfd); err != nil {
		w.log.Warn("stop listening", zap.Error(err))
	}
	w.listening = false
}

// stopAtConnLimit stops accepting while MaxConns connections are open;
// closeConn resumes once one closes. The limit is logged once per episode,
// which lasts until the open connections fall below the low-water mark (see
// endLimitEpisode), so a worker held at its limit by steady load does not log
// each close and the accept that follows it.
func (w *Worker) stopAtConnLimit() {
	w.stopListening()
	w.atConnLimit = true
	w.limitHits++
	if w.limitHits == 1 {
		w.log.Info("connection limit reached; accepts paused", zap.Int("max_conns", w.cfg.MaxConns))
	}
}

// Below limitLowNum/limitLowDen of Config.MaxConns an episode at the
// connection limit is over.
const limitLowNum, limitLowDen = 9, 10

// endLimitEpisode logs the end of an episode at the connection limit once the
// open connections are below the low-water mark and the listener is watched.
func (w *Worker) endLimitEpisode() {
	open := w.stats.open.Load()
	if w.limitHits == 0 || !w.listening || open*limitLowDen >= int64(w.cfg.MaxConns)*limitLowNum {
		return
	}
	w.log.Info("below the connection limit; accepting again", zap.Int64("open", open), zap.Int("limit_hits", w.limitHits))
	w.limitHits = 0
}

// pauseAccept stops watching the listener until the next sweep, so a lasting
// failure such as running out of descriptors does not spin the loop. It logs
// the first failure of an episode only.
func (w *Worker) pauseAccept(err error) {
	if !w.acceptFailing {
		w.log.Warn("accept failed; pausing accepts until one succeeds", zap.Error(err), zap.Duration("retry", w.tick))
	}
	w.acceptFailing = true
	w.stopListening()
	w.acceptResume = w.now + int64(w.tick)
}

// acceptRecovered ends an episode of failing accepts.
func (w *Worker) acceptRecovered() {
	if w.acceptFailing {
		w.acceptFailing = false
		w.log.Info("accepting again")
	}
}

// resumeAccept watches the listener again, unless it is closed, a failure's
// pause has not run out, or the connection limit holds.
func (w *Worker) resumeAccept() {
	if w.lfd < 0 || w.listening || w.now < w.acceptResume || w.stats.open.Load() >= int64(w.cfg.MaxConns) {
		return
	}
	if err := w.poll.add(w.lfd, readEvents); err != nil {
		w.log.Warn("resume listening", zap.Error(err))
		return
	}
	w.listening = true
	w.atConnLimit = false
}

func (w *Worker) openConn(fd int, sa unix.Sockaddr) {
	// Answers are written whole, once per wakeup: nothing gains from Nagle.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := w.poll.add(fd, readEvents); err != nil {
		_ = unix.Close(fd)
		w.log.Warn("register connection", zap.Error(err))
		return
	}
	w.nextID++
	c := &conn{fd: int32(fd), id: w.nextID, events: readEvents, active: w.now, flags: unheard}
	if fd >= len(w.conns) {
		w.conns = append(w.conns, make([]*conn, max(fd+1, 2*len(w.conns))-len(w.conns))...)
	}
	w.conns[fd] = c
	w.stats.accepted.Add(1)
	w.stats.open.Add(1)
	w.cfg.Metrics.Add(metrics.Accepted, 1)
	w.notePeer(fd, sa)
	if w.log.Core().Enabled(zapcore.DebugLevel) {
		w.log.Debug("comes", zap.String("addr", sockaddrString(sa)), zap.Int("fd", fd), zap.Uint64("conn", c.id))
	}
}

func (w *Worker) connAt(fd int) *conn {
	if fd < 0 || fd >= len(w.conns) {
		return nil
	}
	return w.conns[fd]
}

func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return sa.Name
	}
	return "unknown"
}
