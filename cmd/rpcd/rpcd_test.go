//go:build linux

package main

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestWorkersExist(t *testing.T) {
	s := startServer(t, "-workers=3")
	if pids := s.workerPids(); len(pids) != 3 {
		t.Fatalf("master %d has %d worker processes %v, want 3", s.pid(), len(pids), pids)
	}
	c := dial(t, s.addr)
	for i := range 5 {
		mustPing(t, c, seq(0, i))
	}
}

func TestKilledWorkerIsReplaced(t *testing.T) {
	s := startServer(t, "-workers=2")
	victim := s.workerPids()[0]

	var killedAt atomic.Int64 // unix nanos once the master has reaped the victim
	var refused, failedAfterKill, failedInFlight atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now().UnixNano()
				err := pingOnce(s.addr, seq(g, i))
				switch {
				case err == nil:
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case killedAt.Load() != 0 && began > killedAt.Load():
					failedAfterKill.Add(1)
					t.Logf("dialed after the kill: %v", err)
				default:
					failedInFlight.Add(1) // on the victim when it died
				}
			}
		}()
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, 10*time.Second, func(e logEntry) bool {
		return e.Msg == "worker exited" && e.Fields["pid"] == float64(victim)
	})
	killedAt.Store(time.Now().UnixNano())
	s.logs.wait(t, 15*time.Second, func(e logEntry) bool {
		pid, _ := e.Fields["pid"].(float64)
		return e.Msg == "worker ready" && int(pid) != victim && e.Fields["slot"] != nil &&
			time.Now().UnixNano() > killedAt.Load()
	})
	c := dial(t, s.addr)
	for i := range 20 {
		mustPing(t, c, seq(99, i))
	}
	close(stop)
	wg.Wait()
	if pids := s.workerPids(); len(pids) != 2 {
		t.Fatalf("%d workers after the replacement, want 2", len(pids))
	}
	t.Logf("refused %d, failed after kill %d, in flight on the killed worker %d",
		refused.Load(), failedAfterKill.Load(), failedInFlight.Load())
	if refused.Load() != 0 || failedAfterKill.Load() != 0 {
		t.Fatal("connections failed while the slot was refilled")
	}
}

// pingOnce dials, pings and closes.
func pingOnce(addr, params string) error {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	c := &client{Conn: nc}
	if err := c.send("ping", params); err != nil {
		return err
	}
	out, res, err := c.recv()
	if err == nil && (out != "pong" || res != params) {
		err = errors.New("wrong answer " + out + " " + res)
	}
	return err
}

// TestStopUnderLoad sends SIGTERM while pipelined clients run: every answer
// must arrive in order, each connection must end with a clean EOF, every
// request a worker read must have been answered, and the master must exit 0.
func TestStopUnderLoad(t *testing.T) {
	s := startServer(t, "-workers=2")
	const conns, depth = 16, 8
	var wg sync.WaitGroup
	answered := make([]int, conns)
	errs := make(chan error, conns)
	warm := make(chan struct{}, conns)
	for i := range conns {
		c := dial(t, s.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := pipelineUntilEOF(c, i, depth, warm)
			answered[i] = n
			if err != nil {
				errs <- err
			}
		}()
	}
	for range conns {
		select {
		case <-warm:
		case <-time.After(20 * time.Second):
			t.Fatal("clients never got going")
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if code := s.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
	checkWorkersAnsweredAll(t, s)
	t.Logf("answers per connection: %v", answered)
}

// pipelineUntilEOF keeps depth pings in flight on c until the server closes
// it, checking that answers come back in order. It signals warm after 50
// answers and returns how many it got.
func pipelineUntilEOF(c *client, id, depth int, warm chan<- struct{}) (int, error) {
	sent, got := 0, 0
	for ; sent < depth; sent++ {
		if err := c.send("ping", seq(id, sent)); err != nil {
			return got, err
		}
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		out, res, err := c.recv()
		if err != nil {
			if isEOF(err) {
				return got, nil
			}
			return got, err
		}
		if out != "pong" || res != seq(id, got) {
			return got, errors.New("answer out of order: " + out + " " + res)
		}
		if got++; got == 50 {
			warm <- struct{}{}
		}
		// A write after the server's FIN is fine: it reads and discards.
		if err := c.send("ping", seq(id, sent)); err != nil {
			return got, err
		}
		sent++
	}
	return got, errors.New("connection never closed")
}

func isEOF(err error) bool {
	return err != nil && (err.Error() == "EOF" || strings.HasSuffix(err.Error(), ": EOF"))
}

// checkWorkersAnsweredAll reads each worker's closing log line.
func checkWorkersAnsweredAll(t *testing.T, s *server) {
	t.Helper()
	stopped := 0
	for _, e := range s.logs.all() {
		if e.Msg != "loop stopped" {
			continue
		}
		stopped++
		if e.Fields["requests"] != e.Fields["answered"] {
			t.Errorf("worker read %v requests but answered %v", e.Fields["requests"], e.Fields["answered"])
		}
	}
	if stopped != 2 {
		t.Errorf("%d workers logged a graceful stop, want 2", stopped)
	}
}

// TestSlowRequestDoesNotDelayPings keeps fib(90000) calls in flight on one
// connection and checks that a single worker answers pings on another
// connection before they finish.
func TestSlowRequestDoesNotDelayPings(t *testing.T) {
	s := startServer(t, "-workers=1")
	slow, fast := dial(t, s.addr), dial(t, s.addr)
	const fibs = 64
	for range fibs {
		if err := slow.send("fib", "90000"); err != nil {
			t.Fatal(err)
		}
	}
	var fibsDone atomic.Int64
	done := make(chan error, 1)
	go func() {
		for range fibs {
			out, res, err := slow.recv()
			if err == nil && (out != "fib_r" || len(res) != 18809) {
				err = errors.New("fib(90000) answered " + out)
			}
			if err != nil {
				done <- err
				return
			}
			fibsDone.Add(1)
		}
		done <- nil
	}()
	mustPing(t, fast, `"while fib runs"`)
	if n := fibsDone.Load(); n == fibs {
		t.Fatalf("the ping was answered only after all %d fib calls", fibs)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := launch(t, "-listen="+ln.Addr().String(), "-log-format=json", "-workers=1")
	s.logs.allowErrors("master failed")
	if code := s.waitExit(20 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if !strings.Contains(s.logs.dump(), "address already in use") {
		t.Fatalf("the log does not say why:\n%s", s.logs.dump())
	}
}

func TestSeedClientInterop(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found; install it (apt-get install python3) to run the seed client against rpcd")
	}
	for _, order := range []string{"little", "big"} {
		t.Run(order, func(t *testing.T) {
			s := startServer(t, "-workers=2", "-byteorder="+order)
			host, port, _ := net.SplitHostPort(s.addr)
			out, err := exec.Command(python, "testdata/seed_client.py", host, port, order).CombinedOutput()
			if err != nil {
				t.Fatalf("seed client: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "all answers as expected") {
				t.Fatalf("seed client output:\n%s", out)
			}
		})
	}
}
