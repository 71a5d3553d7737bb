package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
)

// TestStopUnderLoad runs docker stop while pipelined clients keep requests in
// flight: each connection gets its answers in order, then a clean end of
// stream; every request a worker read was answered; the container exits 0
// within docker's grace period.
func TestStopUnderLoad(t *testing.T) {
	t.Parallel()
	c := runContainer(t, nil, "-workers=2")
	const conns, depth = 8, 8
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	warm := make(chan struct{}, conns)
	answered := make([]int, conns)
	for i := range conns {
		conn, err := dialRPC(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := pipelineUntilEOF(conn, i, depth, warm)
			answered[i] = n
			if err != nil {
				errs <- fmt.Errorf("connection %d after %d answers: %w", i, n, err)
			}
		}()
	}
	for range conns {
		select {
		case <-warm:
		case <-time.After(30 * time.Second):
			t.Fatal("clients never got going")
		}
	}
	start := time.Now()
	run(t, "docker", "stop", c.id) // default grace period: 10s, then SIGKILL
	elapsed := time.Since(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("docker stop under load took %v; answers per connection %v", elapsed.Round(time.Millisecond), answered)
	if elapsed >= 10*time.Second {
		t.Errorf("docker stop took %v: the grace period ran out", elapsed)
	}
	if code := c.inspect("{{.State.ExitCode}}"); code != "0" {
		t.Errorf("container exited %s, want 0", code)
	}
	checkAnsweredAll(t, c.logs(), 2)
}

// pipelineUntilEOF keeps depth pings in flight on conn until the server
// closes it, checking that answers come back in order. It signals warm after
// 50 answers and returns how many it got.
func pipelineUntilEOF(conn *rpcConn, id, depth int, warm chan<- struct{}) (int, error) {
	sent, got := 0, 0
	for ; sent < depth; sent++ {
		if err := conn.send("ping", seq(id, sent)); err != nil {
			return got, err
		}
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		out, res, err := conn.recv()
		if errors.Is(err, errCleanEOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if out != "pong" || res != seq(id, got) {
			return got, fmt.Errorf("answer %d out of order: %s %s", got, out, res)
		}
		if got++; got == 50 {
			warm <- struct{}{}
		}
		// A write after the server's FIN is fine: it reads and discards.
		if err := conn.send("ping", seq(id, sent)); err != nil {
			return got, err
		}
		sent++
	}
	return got, errors.New("connection never closed")
}

func seq(conn, n int) string { return fmt.Sprintf(`"c%d-%d"`, conn, n) }

// checkAnsweredAll reads the workers' closing log lines: each must have
// answered every request it read.
func checkAnsweredAll(t *testing.T, logs []logEntry, workers int) {
	t.Helper()
	stopped := 0
	for _, e := range logs {
		if e.msg() != "loop stopped" {
			continue
		}
		stopped++
		if e["requests"] != e["answered"] {
			t.Errorf("worker %v read %v requests but answered %v", e["pid"], e["requests"], e["answered"])
		}
	}
	if stopped < workers {
		t.Errorf("%d workers logged a graceful stop, want %d", stopped, workers)
	}
}

// loadStats counts a load run's outcomes.
type loadStats struct {
	answered atomic.Int64 // correct pongs
	retried  atomic.Int64 // requests resent after a clean close before any answer byte
	failed   atomic.Int64 // wrong answers, errors, or a retry that failed too
	mu       sync.Mutex
	firstErr error
}

func (s *loadStats) fail(err error) {
	s.failed.Add(1)
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// pingLoop sends pings one at a time until stop is closed. A connection the
// server closed at a frame boundary before answering (a drained worker) never
// read the request: the client reconnects and resends once, as clients of
// any keep-alive protocol do.
func pingLoop(addr string, id int, stop <-chan struct{}, stats *loadStats) {
	var conn *rpcConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		params := seq(id, n)
		for attempt := 0; ; attempt++ {
			var err error
			if conn == nil {
				conn, err = dialRPC(addr)
			}
			if err == nil {
				err = conn.ping(params)
			}
			if err == nil {
				stats.answered.Add(1)
				break
			}
			if conn != nil {
				conn.Close()
				conn = nil
			}
			if errors.Is(err, errCleanEOF) && attempt == 0 {
				stats.retried.Add(1)
				continue
			}
			stats.fail(fmt.Errorf("client %d request %d: %w", id, n, err))
			break
		}
	}
}

// TestReloadUnderLoad sends SIGHUP with docker kill while clients call: no
// request may fail, and a new generation of workers must replace the old.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	c := runContainer(t, nil, "-workers=2")
	var old []int
	waitfor.Until(t, 10*time.Second, "two workers", func() bool { old = c.workerPids(); return len(old) == 2 })

	const clients = 8
	var stats loadStats
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); pingLoop(c.addr, i, stop, &stats) }()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	waitfor.Until(t, 20*time.Second, "load running", func() bool { return stats.answered.Load() >= 500 })

	run(t, "docker", "kill", "-s", "HUP", c.id)
	var now []int
	renewed := waitfor.Poll(15*time.Second, func() bool {
		now = c.workerPids()
		return len(now) == 2 && !slices.ContainsFunc(now, func(p int) bool { return slices.Contains(old, p) })
	})
	// Keep calling on the new generation a while, bounded by count and time.
	mark := stats.answered.Load()
	waitfor.Poll(20*time.Second, func() bool { return stats.answered.Load() >= mark+500 })
	stopLoad()

	t.Logf("reload under load: %d answered, %d resent after a clean close, %d failed; workers %v then %v",
		stats.answered.Load(), stats.retried.Load(), stats.failed.Load(), old, now)
	if n := stats.failed.Load(); n > 0 {
		t.Errorf("%d requests failed across the reload; first: %v", n, stats.firstErr)
	}
	if !renewed {
		t.Errorf("no new generation of workers within 15s of SIGHUP (workers %v, then %v); the master said: %s",
			old, now, reloadLines(c.logs()))
	}
}

// reloadLines quotes the master's log lines after the signal.
func reloadLines(logs []logEntry) string {
	var lines []string
	for _, e := range logs {
		if role, _ := e["role"].(string); role == "master" && strings.Contains(strings.ToLower(e.msg()), "reload") {
			lines = append(lines, fmt.Sprintf("%q", e.msg()))
		}
	}
	if len(lines) == 0 {
		return "nothing about reload"
	}
	return strings.Join(lines, ", ")
}
