package master

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A stop with a StopDelay keeps the workers serving until the delay is
// over, then stops them as usual; stragglers are killed at the same
// deadline as without it.
func TestStopDelay(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration
		termedAt time.Duration // after the stop signal
	}{
		{name: "none", delay: 0, termedAt: 0},
		{name: "one second", delay: time.Second, termedAt: time.Second},
		{name: "cut to half the shutdown timeout", delay: time.Minute, termedAt: DefaultShutdownTimeout / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimWith(t, 2, func(c *Config) { c.StopDelay = tt.delay })
			s.readyAll()
			pids := s.slotPids()
			s.signal(unix.SIGTERM)
			if !slices.Equal(s.hooks, []string{"ready", "stopping"}) {
				t.Fatalf("hooks %v, want ready then stopping", s.hooks)
			}
			if tt.termedAt > 0 {
				if s.got(pids[0], unix.SIGTERM) {
					t.Fatal("SIGTERM before the stop delay")
				}
				at, ok := s.m.nextDeadline(s.now)
				if !ok || at.Sub(s.now) != tt.termedAt {
					t.Fatalf("next wake in %v (%v), want %v", at.Sub(s.now), ok, tt.termedAt)
				}
				s.after(tt.termedAt - time.Millisecond)
				if s.got(pids[0], unix.SIGTERM) {
					t.Fatal("SIGTERM before the stop delay")
				}
				s.after(time.Millisecond)
			}
			for _, pid := range pids {
				if !s.got(pid, unix.SIGTERM) {
					t.Fatalf("worker %d not sent SIGTERM after %v", pid, tt.termedAt)
				}
			}
			s.after(DefaultShutdownTimeout - tt.termedAt)
			for _, pid := range pids {
				if !s.got(pid, unix.SIGKILL) {
					t.Fatalf("straggler %d not killed at the shutdown timeout", pid)
				}
			}
		})
	}
}

// OnWorkers gives the slot count on ready, then follows it.
func TestOnWorkers(t *testing.T) {
	var got []int
	s := newSimWith(t, 2, func(c *Config) { c.Hooks.OnWorkers = func(n int) { got = append(got, n) } })
	if len(got) != 0 {
		t.Fatalf("OnWorkers %v before ready", got)
	}
	s.readyAll()
	s.signal(unix.SIGTTIN)
	s.readyAll()
	s.signal(unix.SIGTTOU)
	s.signal(unix.SIGTTOU)
	s.signal(unix.SIGTTOU) // the last one stays
	if want := []int{2, 3, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("OnWorkers got %v, want %v", got, want)
	}
}

// UpgradeEnv's assignments reach the new image, replacing the master's own.
func TestUpgradeEnv(t *testing.T) {
	t.Setenv("RPCD_TEST_LEASE", "old")
	s := newSimWith(t, 1, func(c *Config) {
		c.UpgradeEnv = func() []string { return []string{"RPCD_TEST_LEASE=new"} }
	})
	s.readyAll()
	s.upgrade()
	var vals []string
	for _, kv := range s.sys.execs[0] {
		if v, ok := strings.CutPrefix(kv, "RPCD_TEST_LEASE="); ok {
			vals = append(vals, v)
		}
	}
	if !slices.Equal(vals, []string{"new"}) {
		t.Fatalf("new image's RPCD_TEST_LEASE %v, want [new]", vals)
	}
	if handoverOf(s.sys.execs[0]) == "" {
		t.Fatal("no handover in the new image's environment")
	}
}

// A stop held by HoldStop sends SIGTERM when the hold is released, or at
// StopDelay if that comes first; stragglers are killed at the usual
// deadline either way.
func TestHoldStop(t *testing.T) {
	const delay = 2 * time.Second
	tests := []struct {
		name     string
		release  time.Duration // after the stop signal; 0: never
		termedAt time.Duration
	}{
		{name: "released before the delay", release: 300 * time.Millisecond, termedAt: 300 * time.Millisecond},
		{name: "never released", release: 0, termedAt: delay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := make(chan struct{})
			calls := 0
			s := newSimWith(t, 2, func(c *Config) {
				c.StopDelay = delay
				c.Hooks.HoldStop = func() <-chan struct{} {
					calls++
					return held
				}
			})
			s.readyAll()
			pids := s.slotPids()
			s.signal(unix.SIGTERM)
			if calls != 1 {
				t.Fatalf("HoldStop called %d times, want once", calls)
			}
			if tt.release > 0 {
				s.after(tt.release - time.Millisecond)
				if s.got(pids[0], unix.SIGTERM) {
					t.Fatal("SIGTERM before the hold was released")
				}
				s.now = s.now.Add(time.Millisecond)
				close(held)
				s.stopReleased()
			} else {
				s.after(delay - time.Millisecond)
				if s.got(pids[0], unix.SIGTERM) {
					t.Fatal("SIGTERM before the stop delay")
				}
				s.after(time.Millisecond)
			}
			for _, pid := range pids {
				if !s.got(pid, unix.SIGTERM) {
					t.Fatalf("worker %d not sent SIGTERM after %v", pid, tt.termedAt)
				}
			}
			s.after(DefaultShutdownTimeout - tt.termedAt - time.Millisecond)
			if s.got(pids[0], unix.SIGKILL) {
				t.Fatal("SIGKILL before the shutdown timeout")
			}
			s.after(time.Millisecond)
			for _, pid := range pids {
				if !s.got(pid, unix.SIGKILL) {
					t.Fatalf("straggler %d not killed at the shutdown timeout", pid)
				}
			}
		})
	}
}
