package worker

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxPending     = 4 << 20
	DefaultQueueSize      = 1024
	DefaultHandlerTimeout = 10 * time.Second
)

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
}

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ByteOrder != protocol.LittleEndian && c.ByteOrder != protocol.BigEndian:
		return c, fmt.Errorf("byte order %d: unknown", c.ByteOrder)
	case c.IdleTimeout < 0, c.ReadTimeout < 0, c.WriteTimeout < 0, c.HandlerTimeout < 0:
		return c, errors.New("timeouts must not be negative")
	case c.MaxPending < 0, c.PoolSize < 0, c.QueueSize < 0:
		return c, errors.New("MaxPending, PoolSize and QueueSize must not be negative")
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
}

// counters are the live values behind Stats; any goroutine may read them.
type counters struct {
	accepted atomic.Uint64
	open     atomic.Int64
	paused   atomic.Int64
	requests atomic.Uint64
	answered atomic.Uint64
	errors   atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Accepted: c.accepted.Load(),
		Open:     c.open.Load(),
		Paused:   c.paused.Load(),
		Requests: c.requests.Load(),
		Answered: c.answered.Load(),
		Errors:   c.errors.Load(),
	}
}
