//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/internal/waitfor"
)

// lifecycleConfig is the configuration file the test starts rpcd with.
const lifecycleConfig = `# rpcd lifecycle test
workers: %d
drain-timeout: 10s
worker-timeout: 5s
shutdown-timeout: 10s
max-requests: 40000
max-requests-jitter: 20000
`

// TestLifecycleUnderLoad operates the server while 100 connections, half
// one-in-flight and half pipelined, keep it busy: ten SIGHUPs, one of which
// changes the worker count; an invalid configuration and a SIGHUP; SIGTTIN
// and SIGTTOU; SIGUSR2 with a new binary on disk; SIGKILL of two workers;
// SIGTERM. No request may fail except those in flight on a killed worker.
func TestLifecycleUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("drives load for about half a minute")
	}
	env := newLifecycleEnv(t)
	s := env.start(t)
	before := tcpCounters()

	l := newLoad(s.addr)
	l.start(50, 1, time.Now().Add(90*time.Second))
	l.start(50, 8, time.Now().Add(90*time.Second))
	env.rest(t, l)
	env.reloadTenTimes(t, s, l)
	env.reloadInvalid(t, s)
	env.scale(t, s)
	env.upgradeBroken(t, s)
	env.upgrade(t, s)
	env.killWorkers(t, s, l, 2)
	waitNoZombies(t, s.pid())
	env.stop(t, s, l)

	t.Logf("load: %s", l.report())
	t.Logf("TcpExt before %v, after %v (host-wide)", before, tcpCounters())
	checkLoad(t, l)
	checkAllAnswered(t, s)
}

// lifecycleEnv holds the binary and configuration file the test operates.
type lifecycleEnv struct {
	dir, bin, conf, pidfile string
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	dir := t.TempDir()
	e := &lifecycleEnv{dir: dir, bin: filepath.Join(dir, "rpcd"),
		conf: filepath.Join(dir, "rpcd.yaml"), pidfile: filepath.Join(dir, "rpcd.pid")}
	installBinary(t, e.bin)
	e.writeConfig(t, fmt.Sprintf(lifecycleConfig, 3))
	return e
}

func (e *lifecycleEnv) start(t *testing.T) *server {
	s := launchBinary(t, e.bin, "-config="+e.conf, "-pidfile="+e.pidfile,
		"-listen=127.0.0.1:0", "-log-format=json")
	s.logs.allowErrors("reload failed; keeping the running generation",
		"upgrade failed; the running master carries on")
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	s.addr, _ = ready.Fields["addr"].(string)
	if n := len(s.workerPids()); n != 3 {
		t.Fatalf("%d workers from the config file, want 3", n)
	}
	return s
}

// writeConfig replaces the configuration file atomically, as an operator's
// deploy tool would.
func (e *lifecycleEnv) writeConfig(t *testing.T, text string) {
	tmp := e.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.conf); err != nil {
		t.Fatal(err)
	}
}

// check runs rpcd -t on the configuration file.
func (e *lifecycleEnv) check() ([]byte, error) {
	return rpcdtest.Command(e.bin, "-t", "-config="+e.conf).CombinedOutput()
}

func (e *lifecycleEnv) rest(t *testing.T, l *load) {
	l.phase.Store(phaseRest)
	waitAnswered(t, l, 2000)
	time.Sleep(1500 * time.Millisecond) // latency at rest is measured over this spell
}

// reloadTenTimes sends ten SIGHUPs at random intervals, the fifth after the
// worker count went from 3 to 2, and waits for the generation the last one
// asked for. Each SIGHUP is sent once the master has received the one
// before, so that the kernel does not merge them and all ten are counted.
func (e *lifecycleEnv) reloadTenTimes(t *testing.T, s *server, l *load) {
	l.phase.Store(phaseReload)
	defer l.phase.Store(phaseOther)
	from := len(s.logs.all())
	for i := range 10 {
		if i == 4 {
			e.writeConfig(t, fmt.Sprintf(lifecycleConfig, 2))
		}
		signal(t, s, syscall.SIGHUP)
		waitLog(t, s, from, 10*time.Second, fmt.Sprintf("SIGHUP %d received", i+1), func(es []logEntry) bool {
			return countSignal(es, "hangup") == i+1
		})
		time.Sleep(time.Duration(rand.IntN(80)) * time.Millisecond)
	}
	var last *logEntry
	es := waitLog(t, s, from, 60*time.Second, "the last generation asked for", func(es []logEntry) bool {
		last = lastAskedGeneration(es)
		return last != nil
	})
	if last.Fields["workers"] != float64(2) {
		t.Fatalf("last generation has %v workers, want 2: %s", last.Fields["workers"], last.raw)
	}
	t.Logf("ten SIGHUPs: %d received, %d generations started, last %v",
		countSignal(es, "hangup"), countMsg(es, "starting new generation"), last.Fields["generation"])
}

// lastAskedGeneration returns the "new generation ready" of the rollout the
// last SIGHUP in es asked for, or nil while it is not ready. That rollout
// starts at once, or after the one running when the signal came, and every
// SIGHUP during a rollout merges into the one that follows it.
func lastAskedGeneration(es []logEntry) *logEntry {
	lastSignal := -1
	for i, e := range es {
		if e.Msg == "signal received" && e.Fields["signal"] == "hangup" {
			lastSignal = i
		}
	}
	var gen any
	for i := lastSignal + 1; i < len(es); i++ {
		switch {
		case gen == nil && es[i].Msg == "starting new generation":
			gen = es[i].Fields["generation"]
		case gen != nil && es[i].Msg == "new generation ready" && es[i].Fields["generation"] == gen:
			return &es[i]
		}
	}
	return nil
}

// countSignal counts the master's receipts of the signal named name.
func countSignal(es []logEntry, name string) int {
	n := 0
	for _, e := range es {
		if e.Msg == "signal received" && e.Fields["signal"] == name {
			n++
		}
	}
	return n
}

// reloadInvalid checks that -t rejects a broken file and that SIGHUP with
// it keeps the running generation.
func (e *lifecycleEnv) reloadInvalid(t *testing.T, s *server) {
	e.writeConfig(t, "workers: two\n")
	out, err := e.check()
	if err == nil {
		t.Fatalf("rpcd -t accepted an invalid configuration: %s", out)
	}
	from := len(s.logs.all())
	signal(t, s, syscall.SIGHUP)
	waitLog(t, s, from, 10*time.Second, "reload refused", func(es []logEntry) bool {
		return countMsg(es, "reload failed; keeping the running generation") == 1
	})
	if n := countMsg(s.logs.all()[from:], "starting new generation"); n != 0 {
		t.Fatalf("an invalid configuration started %d generations", n)
	}
	e.writeConfig(t, fmt.Sprintf(lifecycleConfig, 2))
	if out, err := e.check(); err != nil {
		t.Fatalf("rpcd -t rejected the valid configuration: %v: %s", err, out)
	}
}

// scale adds a worker with SIGTTIN and removes one with SIGTTOU, and shows
// the listening sockets before and after.
func (e *lifecycleEnv) scale(t *testing.T, s *server) {
	from := len(s.logs.all())
	signal(t, s, syscall.SIGTTIN)
	waitLog(t, s, from, 20*time.Second, "added worker ready", func(es []logEntry) bool {
		return findMsg(es, "worker ready", "slot", float64(2)) != nil && countMsg(es, "adding worker") == 1
	})
	t.Logf("listeners with 3 workers:\n%s", listeners(s.addr))
	// Short connections keep arriving while the slot goes, so that some sit
	// in the removed socket's accept queue when it closes.
	churn := startChurn(s.addr, 8)
	from = len(s.logs.all())
	signal(t, s, syscall.SIGTTOU)
	waitLog(t, s, from, 20*time.Second, "removed worker gone", func(es []logEntry) bool {
		return countMsg(es, "slot removed") == 1 && countMsg(es, "old worker exited") >= 1
	})
	ok, retried, failed := churn.stop()
	t.Logf("listeners with 2 workers:\n%s", listeners(s.addr))
	t.Logf("short connections across SIGTTOU: %d answered, %d retried after a clean end of stream, %d failed",
		ok, retried, len(failed))
	for _, err := range failed[:min(len(failed), 5)] {
		t.Errorf("short connection across SIGTTOU: %v", err)
	}
}

// churn dials, pings once and closes, in a loop on several goroutines.
type churn struct {
	quit    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	ok      int
	retried int // pings sent again after a clean end of stream before any answer
	errs    []error
}

func startChurn(addr string, n int) *churn {
	c := &churn{quit: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-c.quit:
					return
				default:
				}
				retried, err := pingRetrying(addr, seq(1000+g, i))
				c.mu.Lock()
				c.retried += retried
				if err != nil {
					c.errs = append(c.errs, err)
				} else {
					c.ok++
				}
				c.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(c.done) }()
	return c
}

func (c *churn) stop() (ok, retried int, errs []error) {
	close(c.quit)
	<-c.done
	return c.ok, c.retried, c.errs
}

// pingRetrying is pingOnce that sends the ping again on a new connection
// after a clean end of stream before the answer: the server never read it.
func pingRetrying(addr, params string) (retried int, err error) {
	for range 10 {
		var clean bool
		if clean, err = pingCleanEOF(addr, params); !clean {
			return retried, err
		}
		retried++
	}
	return retried, err
}

// pingCleanEOF dials, pings and closes; clean reports an end of stream
// before any byte of the answer.
func pingCleanEOF(addr, params string) (clean bool, err error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer nc.Close()
	c := &client{Conn: nc}
	if err := c.send("ping", params); err != nil {
		return false, err
	}
	out, res, err := c.recv()
	if err != nil {
		return errors.Is(err, io.EOF) && len(c.buf) == 0, err
	}
	if out != "pong" || res != params {
		return false, errors.New("wrong answer " + out + " " + res)
	}
	return false, nil
}

// upgradeBroken puts a binary that cannot start at the master's path: the
// self-check fails before the exec, and the master carries on.
func (e *lifecycleEnv) upgradeBroken(t *testing.T, s *server) {
	tmp := e.bin + ".broken"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\necho cannot start >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.bin); err != nil {
		t.Fatal(err)
	}
	from := len(s.logs.all())
	signal(t, s, syscall.SIGUSR2)
	es := waitLog(t, s, from, 20*time.Second, "upgrade refused", func(es []logEntry) bool {
		return countMsg(es, "upgrade failed; the running master carries on") == 1
	})
	if n := countMsg(es, "adopted running workers"); n != 0 {
		t.Fatal("the master re-executed a broken binary")
	}
	c := dial(t, s.addr)
	mustPing(t, c, `"after a failed upgrade"`)
}

// upgrade puts a new binary at the master's path and sends SIGUSR2: the
// master must keep its pid and run the new file.
func (e *lifecycleEnv) upgrade(t *testing.T, s *server) {
	oldIno := inode(t, fmt.Sprintf("/proc/%d/exe", s.pid()))
	installBinary(t, e.bin)
	newIno := inode(t, e.bin)
	if newIno == oldIno {
		t.Fatal("the new binary has the old inode")
	}
	from := len(s.logs.all())
	signal(t, s, syscall.SIGUSR2)
	waitLog(t, s, from, 60*time.Second, "upgraded generation ready", func(es []logEntry) bool {
		return findMsg(es, "new generation ready", "reason", "upgrade") != nil
	})
	adopted := findMsg(s.logs.all()[from:], "adopted running workers", "pid", float64(s.pid()))
	if adopted == nil {
		t.Fatalf("no adoption logged by pid %d", s.pid())
	}
	if got := inode(t, fmt.Sprintf("/proc/%d/exe", s.pid())); got != newIno {
		t.Fatalf("master %d runs inode %d after the upgrade, want the new binary's %d", s.pid(), got, newIno)
	}
	t.Logf("upgrade: master pid %d unchanged, executable inode %d -> %d", s.pid(), oldIno, newIno)
}

// killWorkers sends SIGKILL to n random workers and waits for their
// replacements. Requests in flight on them are counted as killed.
func (e *lifecycleEnv) killWorkers(t *testing.T, s *server, l *load, n int) {
	pids := servingPids(s.logs.all())
	if len(pids) < n {
		t.Fatalf("%d serving workers %v, want at least %d", len(pids), pids, n)
	}
	rand.Shuffle(len(pids), func(i, j int) { pids[i], pids[j] = pids[j], pids[i] })
	from := len(s.logs.all())
	l.killWindow.Store(true)
	for _, pid := range pids[:n] {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitLog(t, s, from, 20*time.Second, "killed workers replaced", func(es []logEntry) bool {
		exited := 0
		for _, pid := range pids[:n] {
			if findMsg(es, "worker exited", "pid", float64(pid)) != nil {
				exited++
			}
		}
		return exited == n && countMsg(es, "worker ready") >= n
	})
	// A client had its connection on a killed worker fail, and reconnected,
	// once it has an answer to a request sent after the workers were gone.
	gone := time.Now()
	waitfor.Until(t, 20*time.Second, "every client answered after the kill", func() bool { return l.answeredSince(gone) })
	l.killWindow.Store(false)
}

func (e *lifecycleEnv) stop(t *testing.T, s *server, l *load) {
	l.stopping.Store(true)
	signal(t, s, syscall.SIGTERM)
	if code := s.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("clients still running 30s after the master stopped")
	}
	if _, err := os.Stat(e.pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
}

func checkLoad(t *testing.T, l *load) {
	t.Helper()
	for _, e := range l.errs {
		t.Log(e)
	}
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed outside the kill window", l.failed.Load())
	}
	if got := l.answered.Load() + l.failed.Load() + l.killed.Load() + l.abandoned.Load(); got != l.sent.Load() {
		t.Errorf("sent %d, but answered+failed+killed+unsent = %d", l.sent.Load(), got)
	}
}

// checkAllAnswered reads each gracefully stopped worker's closing line.
func checkAllAnswered(t *testing.T, s *server) {
	t.Helper()
	for _, e := range s.logs.all() {
		if e.Msg == "loop stopped" && e.Fields["requests"] != e.Fields["answered"] {
			t.Errorf("worker %v read %v requests but answered %v", e.Fields["pid"], e.Fields["requests"], e.Fields["answered"])
		}
	}
}

func signal(t *testing.T, s *server, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.pid(), sig); err != nil {
		t.Fatal(err)
	}
}

// waitLog polls the log lines after from until cond holds, for up to timeout.
func waitLog(t *testing.T, s *server, from int, timeout time.Duration, what string, cond func([]logEntry) bool) []logEntry {
	t.Helper()
	var es []logEntry
	if !waitfor.Poll(timeout, func() bool { es = s.logs.all()[from:]; return cond(es) }) {
		t.Fatalf("timed out waiting for %s; logs:\n%s", what, s.logs.dump())
	}
	return es
}

func waitAnswered(t *testing.T, l *load, n int64) {
	t.Helper()
	waitfor.Until(t, 30*time.Second, fmt.Sprintf("%d answers", n), func() bool { return l.answered.Load() >= n })
}

// waitNoZombies polls until the master has no unreaped child.
func waitNoZombies(t *testing.T, master int) {
	t.Helper()
	var zombies []int
	if !waitfor.Poll(5*time.Second, func() bool { zombies = childrenInState(master, "Z"); return len(zombies) == 0 }) {
		t.Fatalf("zombie children of %d: %v", master, zombies)
	}
}

func childrenInState(parent int, state string) []int {
	return childPids(parent, func(st string) bool { return st == state })
}

// servingPids follows the master's log to the workers serving now: ready,
// and neither draining nor gone.
func servingPids(es []logEntry) []int {
	serving := map[int]bool{}
	for _, e := range es {
		pid, _ := e.Fields["pid"].(float64)
		switch {
		case e.Fields["role"] != "master":
		case e.Msg == "worker ready":
			serving[int(pid)] = true
		case e.Msg == "draining old worker", strings.HasSuffix(e.Msg, "exited"):
			delete(serving, int(pid))
		}
	}
	var pids []int
	for pid := range serving {
		pids = append(pids, pid)
	}
	return pids
}

func countMsg(es []logEntry, msg string) int {
	n := 0
	for _, e := range es {
		if e.Msg == msg {
			n++
		}
	}
	return n
}

func findMsg(es []logEntry, msg, key string, want any) *logEntry {
	for i := range es {
		if es[i].Msg == msg && es[i].Fields[key] == want {
			return &es[i]
		}
	}
	return nil
}

// installBinary copies the test binary (which runs rpcd's main, see
// TestMain) to path through a rename, so that path gets a new inode.
func installBinary(t *testing.T, path string) {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tmp := path + ".new"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// listeners shows ss's view of the listening sockets on addr: one per
// slot, with its accept queue.
func listeners(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("ss", "-Hltn", "sport = :"+port).CombinedOutput()
	if err != nil {
		return "ss: " + err.Error()
	}
	return string(out)
}

// Load phases: latency is recorded per phase.
const (
	phaseRest = iota
	phaseReload
	phaseOther
	phaseCount
)

// load drives conns connections against addr, each keeping depth pings in
// flight, and reconnects only after the server's clean end of stream at a
// frame boundary. Requests left unanswered then were never read by the
// server: they are sent again on the new connection and counted as retried.
type load struct {
	addr  string
	phase atomic.Int32
	// killWindow is set while a worker is being killed with SIGKILL: a
	// failure then is counted as killed rather than failed.
	killWindow atomic.Bool
	stopping   atomic.Bool // stop after the next clean end of stream

	sent, answered, retried, failed, killed, abandoned, reconnects atomic.Int64
	resets, killResets                                             atomic.Int64 // connections reset: all, on killed workers

	mu      sync.Mutex
	hists   [phaseCount]*hdrhistogram.Histogram
	errs    []string
	clients []*progress
	wg      sync.WaitGroup
}

// progress is one client's: when the last request it got an answer to was
// sent (unix nanoseconds), and whether it has ended.
type progress struct {
	lastSent atomic.Int64
	ended    atomic.Bool
}

// answeredSince reports whether every client still running has an answer
// to a request sent after t.
func (l *load) answeredSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.clients {
		if !p.ended.Load() && p.lastSent.Load() <= t.UnixNano() {
			return false
		}
	}
	return true
}

func newLoad(addr string) *load {
	l := &load{addr: addr}
	for i := range l.hists {
		l.hists[i] = hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
	}
	return l
}

// start runs conns client goroutines with the given pipeline depth.
func (l *load) start(conns, depth int, deadline time.Time) {
	for i := range conns {
		p := new(progress)
		l.mu.Lock()
		l.clients = append(l.clients, p)
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer p.ended.Store(true)
			l.runClient(i, depth, deadline, p)
		}()
	}
}

// pending is a request sent and not yet answered.
type pending struct {
	params string
	sentAt time.Time
}

func (l *load) runClient(id, depth int, deadline time.Time, prog *progress) {
	hists := [phaseCount]*hdrhistogram.Histogram{}
	for i := range hists {
		hists[i] = hdrhistogram.New(1, int64(60*time.Second/time.Microsecond), 3)
	}
	defer l.mergeHists(hists)
	var resend []pending
	next := 0
	for round := 0; round < 100000 && time.Now().Before(deadline); round++ {
		if round > 0 {
			l.reconnects.Add(1)
		}
		var ok bool
		resend, ok = l.session(id, depth, &next, resend, hists, deadline, prog)
		if !ok || l.stopping.Load() {
			l.abandoned.Add(int64(len(resend)))
			return
		}
	}
	l.abandoned.Add(int64(len(resend)))
}

// session runs one connection. It returns the requests to send again and
// whether the client may reconnect.
func (l *load) session(id, depth int, next *int, resend []pending, hists [phaseCount]*hdrhistogram.Histogram, deadline time.Time, prog *progress) ([]pending, bool) {
	nc, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
	if err != nil {
		l.failed.Add(int64(len(resend)))
		l.note("dial: %v", err)
		return nil, !l.stopping.Load()
	}
	defer nc.Close()
	c := &client{Conn: nc}
	var inflight []pending
	send := func(p pending) error {
		p.sentAt = time.Now()
		inflight = append(inflight, p)
		return c.send("ping", p.params)
	}
	for i, p := range resend {
		if err := send(p); err != nil {
			return l.sessionEnded(c, append(inflight, resend[i+1:]...), err)
		}
	}
	for len(inflight) < depth && !l.stopping.Load() && time.Now().Before(deadline) {
		*next++
		l.sent.Add(1)
		if err := send(pending{params: seq(id, *next)}); err != nil {
			return l.sessionEnded(c, inflight, err)
		}
	}
	for len(inflight) > 0 {
		out, res, err := c.recv()
		if err != nil {
			return l.sessionEnded(c, inflight, err)
		}
		p := inflight[0]
		inflight = inflight[1:]
		if out != "pong" || res != p.params {
			l.failed.Add(1)
			l.note("wrong answer %s %s for %s", out, res, p.params)
			continue
		}
		l.answered.Add(1)
		prog.lastSent.Store(p.sentAt.UnixNano())
		hists[l.phase.Load()].RecordValue(max(1, time.Since(p.sentAt).Microseconds()))
		if l.stopping.Load() || !time.Now().Before(deadline) {
			continue
		}
		*next++
		l.sent.Add(1)
		if err := send(pending{params: seq(id, *next)}); err != nil {
			return l.sessionEnded(c, inflight, err)
		}
	}
	return nil, true
}

// sessionEnded sorts out why a connection ended: a clean end of stream at
// a frame boundary means every unanswered request was never read and may
// be sent again; anything else fails them.
func (l *load) sessionEnded(c *client, inflight []pending, err error) ([]pending, bool) {
	if errors.Is(err, io.EOF) && len(c.buf) == 0 {
		l.retried.Add(int64(len(inflight)))
		return inflight, true
	}
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	if reset {
		l.resets.Add(1)
	}
	if l.killWindow.Load() {
		if reset {
			l.killResets.Add(1)
		}
		l.killed.Add(int64(len(inflight)))
	} else {
		l.failed.Add(int64(len(inflight)))
		l.note("connection failed with %d in flight: %v", len(inflight), err)
	}
	return nil, true
}

func (l *load) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

func (l *load) mergeHists(hists [phaseCount]*hdrhistogram.Histogram) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, h := range hists {
		l.hists[i].Merge(h)
	}
}

// report words the counts and latencies.
func (l *load) report() string {
	p99 := func(i int) string {
		h := l.hists[i]
		if h.TotalCount() == 0 {
			return "n/a"
		}
		return (time.Duration(h.ValueAtQuantile(99)) * time.Microsecond).String()
	}
	return fmt.Sprintf("sent %d, answered %d, failed %d, killed-in-flight %d, retried %d, "+
		"unsent-at-stop %d, resets %d (on killed workers %d), reconnects %d; p99 at rest %s (n=%d), during reloads %s (n=%d), other %s",
		l.sent.Load(), l.answered.Load(), l.failed.Load(), l.killed.Load(), l.retried.Load(),
		l.abandoned.Load(), l.resets.Load(), l.killResets.Load(), l.reconnects.Load(),
		p99(phaseRest), l.hists[phaseRest].TotalCount(), p99(phaseReload), l.hists[phaseReload].TotalCount(), p99(phaseOther))
}

// tcpCounters reads the TcpExt counters that would show resets from a
// closed listener. They are host-wide (per network namespace): other
// programs move them too, so they are reported, not asserted.
func tcpCounters() map[string]int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return nil
	}
	want := map[string]bool{"ListenDrops": true, "ListenOverflows": true, "TCPAbortOnClose": true, "TCPAbortOnData": true}
	out := map[string]int64{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(vals) != len(names) {
			continue
		}
		for j, n := range names {
			if want[n] {
				out[n], _ = strconv.ParseInt(vals[j], 10, 64)
			}
		}
	}
	return out
}

// TestWatchdogReplacesStuckWorker stops a worker's process (its loop no
// longer turns, as with a handler stuck in a loop): the master must kill and
// replace it after -worker-timeout.
func TestWatchdogReplacesStuckWorker(t *testing.T) {
	s := startServer(t, "-workers=1", "-worker-timeout=2s")
	stuck := s.workerPids()[0]
	if err := syscall.Kill(stuck, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, 15*time.Second, func(e logEntry) bool {
		return e.Msg == "worker timed out; killing" && e.Fields["pid"] == float64(stuck)
	})
	s.logs.wait(t, 15*time.Second, func(e logEntry) bool {
		pid, _ := e.Fields["pid"].(float64)
		return e.Msg == "worker ready" && int(pid) != stuck && e.Fields["role"] == "master"
	})
	mustPing(t, dial(t, s.addr), `"after the watchdog"`)
}

// TestControlAndLogReopen runs the master with -log-file and -pidfile, moves
// the log away as logrotate does, and uses rpcd -s reopen and -s stop.
func TestControlAndLogReopen(t *testing.T) {
	dir := t.TempDir()
	logPath, pidfile := filepath.Join(dir, "rpcd.log"), filepath.Join(dir, "rpcd.pid")
	s := launchBinary(t, os.Args[0], "-listen=127.0.0.1:0", "-workers=1", "-log-format=json",
		"-log-file="+logPath, "-pidfile="+pidfile)
	waitFileHas(t, logPath, `"msg":"master ready"`)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	control(t, pidfile, "reopen")
	waitFileHas(t, logPath, `"msg":"log reopened"`)
	control(t, pidfile, "stop")
	if code := s.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
	waitFileHas(t, logPath, `"msg":"loop stopped"`) // the worker reopened too
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
}

// control runs rpcd -s action.
func control(t *testing.T, pidfile, action string) {
	t.Helper()
	if out, err := rpcdtest.Command(os.Args[0], "-s", action, "-pidfile="+pidfile).CombinedOutput(); err != nil {
		t.Fatalf("rpcd -s %s: %v: %s", action, err, out)
	}
}

// waitFileHas polls path until it contains want, for up to 20s.
func waitFileHas(t *testing.T, path, want string) {
	t.Helper()
	var b []byte
	if !waitfor.Poll(20*time.Second, func() bool { b, _ = os.ReadFile(path); return strings.Contains(string(b), want) }) {
		t.Fatalf("%s never contained %s:\n%s", path, want, b)
	}
}
