package worker

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxPending     = 4 << 20
	DefaultQueueSize      = 1024
	DefaultHandlerTimeout = 10 * time.Second
	// DefaultMaxBuffer holds 60 frames of the default MaxFrame half received;
	// 12 non-reading clients at the default MaxPending bring on its pressure,
	// which sheds them down to about 8. A worker serving ordinary traffic holds
	// almost nothing: whole frames are answered from the shared read buffer.
	DefaultMaxBuffer = 64 << 20
)

// Descriptors a worker keeps free for what is not a connection (its epoll
// instance, eventfd, listener, log file, profile), and the largest default
// connection limit.
const (
	reservedFDs     = 64
	maxDefaultConns = 1 << 16
	minDefaultConns = 16
)

// DefaultMaxConns is the connection limit New applies when Config.MaxConns is
// zero: the process's descriptor limit (RLIMIT_NOFILE, which Go raises to its
// hard limit at start) less reservedFDs, at most 65536, so a worker stops
// accepting before it runs out of descriptors.
func DefaultMaxConns() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return maxDefaultConns
	}
	return int(min(max(lim.Cur, reservedFDs+minDefaultConns)-reservedFDs, maxDefaultConns))
}

// Config tunes a Worker. Zero fields take defaults.
type Config struct {
	ByteOrder    protocol.ByteOrder
	MaxFrame     uint32        // largest request body; default protocol.DefaultMaxFrame
	IdleTimeout  time.Duration // close conns with nothing in flight after this quiet spell (0 = never)
	ReadTimeout  time.Duration // drop a conn whose frame stays half-received this long (0 = never)
	WriteTimeout time.Duration // drop a conn whose unsent answers make no progress this long (0 = never)
	MaxPending   int           // per-conn cap on unsent answer bytes before reading pauses; default DefaultMaxPending
	PoolSize     int           // offload goroutines; default GOMAXPROCS
	QueueSize    int           // offload queue bound, full => overloaded; default DefaultQueueSize
	// MaxConns caps the worker's open connections: at the cap it stops
	// accepting, leaving new ones in the listener's queue, and resumes below
	// it; a retiring worker takes the queue whatever the cap (see Retire).
	// Default DefaultMaxConns().
	MaxConns int
	// MaxBuffer is the memory budget: the bytes of half-received frames and
	// unsent answers the worker holds for all its connections, with the
	// buffers it keeps for reuse and 1/16 left for garbage. Near it reading
	// pauses; past it the connections holding the most are dropped. Default
	// DefaultMaxBuffer.
	MaxBuffer int
	// ManageMemoryLimit has the worker keep the process's soft memory limit
	// (debug.SetMemoryLimit) at MaxBuffer plus 2 MiB plus the live heap
	// its connections do not hold, updated at each sweep after a garbage
	// collection: garbage is collected before it takes the process past
	// its budget, whatever the program itself keeps live. For a process
	// running one worker.
	ManageMemoryLimit bool
	// HandlerTimeout bounds each Blocking call, from the moment it is queued:
	// its ctx carries the deadline, and the loop answers timeout once it passes.
	// Default DefaultHandlerTimeout.
	HandlerTimeout time.Duration
	// Heartbeat, if set, is called on the loop goroutine at most once per
	// sweep tick (at most a second apart while the loop turns), so that a
	// supervisor can tell a stuck loop from a quiet one.
	Heartbeat func()
	// Metrics, if set, receives the worker's counts (package metrics); the
	// worker records into it on the loop goroutine only.
	Metrics *metrics.Recorder
	// AccessLog, if set, receives a record of each answered request, on
	// the loop goroutine.
	AccessLog AccessLog
}

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ByteOrder != protocol.LittleEndian && c.ByteOrder != protocol.BigEndian:
		return c, fmt.Errorf("byte order %d: unknown", c.ByteOrder)
	case c.IdleTimeout < 0, c.ReadTimeout < 0, c.WriteTimeout < 0, c.HandlerTimeout < 0:
		return c, errors.New("timeouts must not be negative")
	case c.MaxPending < 0, c.PoolSize < 0, c.QueueSize < 0, c.MaxConns < 0, c.MaxBuffer < 0:
		return c, errors.New("MaxPending, PoolSize, QueueSize, MaxConns and MaxBuffer must not be negative")
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns()
	}
	if c.MaxBuffer == 0 {
		c.MaxBuffer = DefaultMaxBuffer
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = protocol.DefaultMaxFrame
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	return c, nil
}

// Stats is a snapshot of a Worker's counters.
type Stats struct {
	Accepted uint64 // connections accepted
	Open     int64  // connections open now
	Paused   int64  // connections whose reading is paused by unsent answers
	Requests uint64 // frames read (a framing error counts as one)
	Answered uint64 // answers queued for sending, errors included
	Errors   uint64 // error answers
	Buffered int64  // bytes held for connections now, counted against Config.MaxBuffer
	// BudgetPaused reports that reading is paused at frame boundaries because
	// Buffered neared Config.MaxBuffer.
	BudgetPaused bool
	Dropped      uint64 // connections dropped for the memory budget
}

// counters are the live values behind Stats; any goroutine may read them.
type counters struct {
	accepted     atomic.Uint64
	open         atomic.Int64
	paused       atomic.Int64
	requests     atomic.Uint64
	answered     atomic.Uint64
	errors       atomic.Uint64
	buffered     atomic.Int64
	budgetPaused atomic.Bool
	dropped      atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted:     c.accepted.Load(),
		Open:         c.open.Load(),
		Paused:       c.paused.Load(),
		Requests:     c.requests.Load(),
		Answered:     c.answered.Load(),
		Errors:       c.errors.Load(),
		Buffered:     c.buffered.Load(),
		BudgetPaused: c.budgetPaused.Load(),
		Dropped:      c.dropped.Load(),
	}
}
