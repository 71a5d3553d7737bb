package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestStatsMerge(t *testing.T) {
	a := newStats()
	for _, d := range []time.Duration{100 * time.Microsecond, 200 * time.Microsecond} {
		a.recordLatency(d)
	}
	a.errorAnswers, a.errorCodes["overloaded"] = 2, 2
	a.recordConnError(syscall.ECONNRESET)
	a.reconnects, a.lost = 1, 3

	b := newStats()
	b.recordLatency(time.Millisecond)
	b.recordMismatch([]byte(`{"out":"pong","result":"x"}`))
	b.recordMismatch([]byte(`second`))
	b.errorAnswers, b.errorCodes["overloaded"], b.errorCodes["internal"] = 1, 1, 0
	b.recordConnError(fmt.Errorf("read answers: %w", io.EOF))
	b.recordConnError(syscall.ECONNRESET)

	total := newStats()
	total.merge(a)
	total.merge(b)

	checks := []struct {
		name      string
		got, want int64
	}{
		{name: "requests", got: total.requests, want: 3},
		{name: "latency count", got: total.latency.TotalCount(), want: 3},
		{name: "error answers", got: total.errorAnswers, want: 3},
		{name: "overloaded answers", got: total.errorCodes["overloaded"], want: 3},
		{name: "mismatches", got: total.mismatches, want: 2},
		{name: "reset errors", got: total.connErrors["reset"], want: 2},
		{name: "eof errors", got: total.connErrors["eof"], want: 1},
		{name: "reconnects", got: total.reconnects, want: 1},
		{name: "lost", got: total.lost, want: 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if max := total.latency.Max(); max < int64(time.Millisecond) || max > int64(time.Millisecond)*1001/1000 {
		t.Errorf("max = %dns, want 1ms to 3 significant digits", max)
	}
	if total.mismatchBody != `{"out":"pong","result":"x"}` {
		t.Errorf("first mismatch = %q, want the first one recorded", total.mismatchBody)
	}
	if p50 := total.latency.ValueAtPercentile(50); p50 < int64(200*time.Microsecond) || p50 > int64(201*time.Microsecond) {
		t.Errorf("p50 = %dns, want about 200µs", p50)
	}
}

func TestRecordLatencyClampsToRange(t *testing.T) {
	s := newStats()
	s.recordLatency(0)
	s.recordLatency(time.Hour)
	if s.latency.TotalCount() != 2 || s.requests != 2 {
		t.Fatalf("recorded %d values for %d requests, want 2 and 2", s.latency.TotalCount(), s.requests)
	}
	if max := s.latency.Max(); max < histHighest {
		t.Errorf("max = %d, want the histogram's highest value %d", max, histHighest)
	}
}

func TestConnErrorKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "refused", err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, want: "refused"},
		{name: "reset", err: fmt.Errorf("read answers: %w", syscall.ECONNRESET), want: "reset"},
		{name: "broken pipe", err: fmt.Errorf("write requests: %w", syscall.EPIPE), want: "reset"},
		{name: "eof", err: fmt.Errorf("read answers: %w", io.EOF), want: "eof"},
		{name: "deadline", err: fmt.Errorf("read answers: %w", os.ErrDeadlineExceeded), want: "timeout"},
		{name: "bad frame", err: fmt.Errorf("%w: length zero", errBadFrame), want: "bad_frame"},
		{name: "other", err: errors.New("strange"), want: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connErrorKind(tt.err); got != tt.want {
				t.Errorf("connErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestBuildReport(t *testing.T) {
	st := newStats()
	for range 4 {
		st.recordLatency(50 * time.Microsecond)
	}
	st.recordConnError(syscall.ECONNREFUSED)
	cfg := config{addr: "127.0.0.1:1", method: "ping", conns: 2, depth: 4}
	cpu := cpuUsed(42, cpuSample{ticks: 10, procs: 3}, cpuSample{ticks: 12, procs: 3})
	backend := cpuUsed(7, cpuSample{ticks: 100, procs: 1}, cpuSample{ticks: 101, procs: 1})
	r := buildReport(cfg, st, 2*time.Second, cpu, backend)

	if r.RPS != 2 {
		t.Errorf("rps = %v, want 2", r.RPS)
	}
	if r.Server == nil || r.Server.CPUSeconds != 0.02 || r.Server.CPUPerRequest != 5000 || r.Server.Procs != 3 {
		t.Errorf("server = %+v, want 0.02s cpu, 5000µs/req, 3 procs", r.Server)
	}
	if r.Backend == nil || r.Backend.PID != 7 || r.Backend.CPUPerRequest != 2500 {
		t.Errorf("backend = %+v, want pid 7, 2500µs/req", r.Backend)
	}
	if r := buildReport(cfg, st, 2*time.Second, cpu, nil); r.Backend != nil {
		t.Errorf("backend without -backend-pid = %+v, want none", r.Backend)
	}
	if r.ConnErrors != 1 || r.clean() {
		t.Errorf("conn errors = %d, clean = %t; want 1 and not clean", r.ConnErrors, r.clean())
	}
	if r.LatencyP50US < 50 || r.LatencyP50US > 50.1 {
		t.Errorf("p50 = %vµs, want 50", r.LatencyP50US)
	}
}
