package main

import (
	"sync/atomic"
	"time"
)

// schedule is the run plan shared by all connections. Times are offsets from
// base on the monotonic clock. Its methods are safe from any goroutine.
type schedule struct {
	base         time.Time
	measureFrom  time.Duration // end of the warmup
	stopAt       time.Duration // no new requests from here on; 0: no time limit
	budget       int64         // measured requests to issue; 0: no limit
	claimed      atomic.Int64
	interrupted  atomic.Bool
	backoffStart time.Duration // first pause between dial attempts
}

func newSchedule(cfg config, base time.Time) *schedule {
	s := &schedule{
		base:         base,
		measureFrom:  cfg.warmup,
		budget:       cfg.total,
		backoffStart: 20 * time.Millisecond,
	}
	if cfg.duration > 0 {
		s.stopAt = cfg.warmup + cfg.duration
	}
	return s
}

// now is the current offset from base.
func (s *schedule) now() time.Duration { return time.Since(s.base) }

// grant returns how many of want new requests may be sent at offset now, and
// whether they fall in the measured window. Measured requests are taken from
// the budget, so across all connections exactly budget are granted.
func (s *schedule) grant(now time.Duration, want int) (n int, measured bool) {
	if s.finished(now) {
		return 0, false
	}
	if now < s.measureFrom {
		return want, false
	}
	if s.budget == 0 {
		return want, true
	}
	after := s.claimed.Add(int64(want))
	over := after - s.budget
	switch {
	case over <= 0:
		return want, true
	case over >= int64(want):
		return 0, true
	default:
		return want - int(over), true
	}
}

// finished reports whether no more requests will be granted at offset now.
func (s *schedule) finished(now time.Duration) bool {
	return s.interrupted.Load() ||
		(s.stopAt > 0 && now >= s.stopAt) ||
		(s.budget > 0 && s.claimed.Load() >= s.budget)
}

// interrupt stops granting requests; connections drain what is in flight.
func (s *schedule) interrupt() { s.interrupted.Store(true) }
