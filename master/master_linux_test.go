package master

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	reuseport "github.com/kavu/go_reuseport"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/internal/waitfor"
)

// harness runs one Master in the test process, with its log observed.
type harness struct {
	m              *Master
	logs           *observer.ObservedLogs
	cancel         context.CancelFunc
	result         chan error
	readyCalls     atomic.Int32
	allowErrorLogs bool

	once   sync.Once
	runErr error

	hookMu sync.Mutex
	hooks  []string // the hooks called, in order: "stopping", "reloading", "reloaded: <err>"
}

// hooked returns the hooks called so far.
func (h *harness) hooked() []string {
	h.hookMu.Lock()
	defer h.hookMu.Unlock()
	return slices.Clone(h.hooks)
}

func (h *harness) recordHook(name string) {
	h.hookMu.Lock()
	h.hooks = append(h.hooks, name)
	h.hookMu.Unlock()
}

// fakeConfig starts workers from the test binary; behaviour applies to the
// listed slots ("" = all).
func fakeConfig(workers int, behaviour, slots string) Config {
	return Config{Generation: fakeGeneration(workers, behaviour, slots), Path: os.Args[0]}
}

// fakeGeneration is fakeConfig's generation.
func fakeGeneration(workers int, behaviour, slots string) Generation {
	return Generation{
		Listen:          "127.0.0.1:0",
		Workers:         workers,
		ShutdownTimeout: 5 * time.Second,
		Env: append(os.Environ(), behaviourEnv+"="+behaviour, behaviourSlotsEnv+"="+slots,
			// A race-enabled binary otherwise lingers a second at exit.
			"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	}
}

func startMaster(t *testing.T, cfg Config, tweak func(*Master)) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{logs: logs, result: make(chan error, 1)}
	cfg.Hooks = Hooks{
		OnReady:     func() { h.readyCalls.Add(1) },
		OnStopping:  func() { h.recordHook("stopping") },
		OnReloading: func() { h.recordHook("reloading") },
		OnReloaded:  func(err error) { h.recordHook(fmt.Sprintf("reloaded: %v", err)) },
	}
	m, err := New(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if tweak != nil {
		tweak(m)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.result <- m.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		h.wait(t)
		if errs := h.logs.FilterLevelExact(zapcore.ErrorLevel).All(); !h.allowErrorLogs && len(errs) > 0 {
			t.Errorf("unexpected error log: %s %v", errs[0].Message, errs[0].ContextMap())
		}
	})
	return h
}

// wait returns Run's result, failing the test if Run does not return.
func (h *harness) wait(t *testing.T) error {
	t.Helper()
	h.once.Do(func() {
		select {
		case h.runErr = <-h.result:
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return")
		}
	})
	return h.runErr
}

// waitFor waits up to 10s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Until(t, 10*time.Second, what, cond)
}

// waitAllReady waits until n workers run and are ready, and returns them.
func (h *harness) waitAllReady(t *testing.T, n int) []WorkerInfo {
	t.Helper()
	var ws []WorkerInfo
	waitFor(t, "all workers ready", func() bool {
		ws = h.m.Workers()
		return len(ws) == n && countReady(ws) == n
	})
	return ws
}

func countReady(ws []WorkerInfo) int {
	n := 0
	for _, w := range ws {
		if w.Ready && w.Pid != 0 {
			n++
		}
	}
	return n
}

// askSlot dials addr and reads the fake worker's "slot=N pid=P" line.
func askSlot(addr string) (slot, pid int, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("read answer: %w", err)
	}
	_, err = fmt.Sscanf(line, "slot=%d pid=%d\n", &slot, &pid)
	return slot, pid, err
}

// logged returns the entries with msg whose field key has value want.
func (h *harness) logged(msg, key string, want any) []observer.LoggedEntry {
	return h.logs.FilterMessage(msg).Filter(func(e observer.LoggedEntry) bool {
		return fmt.Sprint(e.ContextMap()[key]) == fmt.Sprint(want)
	}).All()
}

func TestServesEverySlot(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		listen  func(t testing.TB) string
	}{
		{name: "port 0", workers: 3, listen: func(testing.TB) string { return "127.0.0.1:0" }},
		{name: "fixed free port", workers: 2, listen: tcptest.FreeAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(tt.workers, behaveWell, "")
			cfg.Generation.Listen = tt.listen(t)
			h := startMaster(t, cfg, nil)
			ws := h.waitAllReady(t, tt.workers)

			pidOf := map[int]int{}
			for i, w := range ws {
				if w.Slot != i {
					t.Errorf("Workers()[%d].Slot = %d", i, w.Slot)
				}
				pidOf[w.Slot] = w.Pid
			}
			if distinct := len(uniq(ws)); distinct != tt.workers {
				t.Errorf("%d distinct pids, want %d: %+v", distinct, tt.workers, ws)
			}
			waitFor(t, "OnReady", func() bool { return h.readyCalls.Load() == 1 })
			if n := h.logs.FilterMessage("master ready").Len(); n != 1 {
				t.Errorf(`"master ready" logged %d times, want 1`, n)
			}

			seen := map[int]bool{}
			for i := 0; i < 300 && len(seen) < tt.workers; i++ {
				slot, pid, err := askSlot(h.m.Addr().String())
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				if pidOf[slot] != pid {
					t.Fatalf("slot %d answered from pid %d, want %d", slot, pid, pidOf[slot])
				}
				seen[slot] = true
			}
			if len(seen) != tt.workers {
				t.Errorf("connections reached slots %v, want all %d", seen, tt.workers)
			}
			if got := h.readyCalls.Load(); got != 1 {
				t.Errorf("OnReady called %d times, want 1", got)
			}
		})
	}
}

func uniq(ws []WorkerInfo) map[int]bool {
	pids := map[int]bool{}
	for _, w := range ws {
		pids[w.Pid] = true
	}
	return pids
}

func TestReplacesKilledWorker(t *testing.T) {
	h := startMaster(t, fakeConfig(2, behaveWell, ""), nil)
	old := h.waitAllReady(t, 2)[0].Pid
	addr := h.m.Addr().String()

	if err := unix.Kill(old, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "killed worker reaped", func() bool { return h.m.Workers()[0].Pid != old })

	// Connections hashed to slot 0 queue on its socket until the
	// replacement accepts them: none may be refused.
	deadline := time.Now().Add(5 * time.Second)
	slot0 := 0
	for i := range 200 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d dials in 5s", i)
		}
		slot, pid, err := askSlot(addr)
		if err != nil {
			t.Fatalf("dial %d during the gap: %v", i, err)
		}
		if slot == 0 {
			slot0++
			if pid == old {
				t.Fatalf("killed worker %d answered", old)
			}
		}
	}
	if slot0 == 0 {
		t.Error("no connection reached slot 0")
	}
	ws := h.waitAllReady(t, 2)
	if ws[0].Pid == old {
		t.Errorf("slot 0 still has pid %d", old)
	}
	if got := h.logged("worker exited", "pid", old); len(got) != 1 || got[0].ContextMap()["status"] != "signal: killed" {
		t.Errorf(`"worker exited" for pid %d: %v`, old, got)
	}
}

func TestStopsGracefully(t *testing.T) {
	tests := []struct {
		name string
		stop func(h *harness)
	}{
		{name: "context cancelled", stop: func(h *harness) { h.cancel() }},
		{name: "SIGTERM", stop: func(h *harness) { h.m.Signal(unix.SIGTERM) }},
		{name: "SIGINT", stop: func(h *harness) { h.m.Signal(unix.SIGINT) }},
		{name: "SIGQUIT", stop: func(h *harness) { h.m.Signal(unix.SIGQUIT) }},
		{name: "SIGTERM to the process", stop: func(h *harness) { unix.Kill(unix.Getpid(), unix.SIGTERM) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startMaster(t, fakeConfig(2, behaveWell, ""), nil)
			ws := h.waitAllReady(t, 2)
			addr := h.m.Addr().String()

			tt.stop(h)
			if err := h.wait(t); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			for _, w := range ws {
				// Exit status 0 is the fake worker's answer to SIGTERM.
				if got := h.logged("worker stopped", "pid", w.Pid); len(got) != 1 || got[0].ContextMap()["status"] != "exit status 0" {
					t.Errorf(`"worker stopped" for pid %d: %v`, w.Pid, got)
				}
				if err := unix.Kill(w.Pid, 0); !errors.Is(err, unix.ESRCH) {
					t.Errorf("worker %d after Run: kill 0 = %v, want ESRCH", w.Pid, err)
				}
			}
			if _, err := net.DialTimeout("tcp", addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial after Run = %v, want connection refused", err)
			}
			if n := countReady(h.m.Workers()); n != 0 {
				t.Errorf("%d workers still listed after Run", n)
			}
		})
	}
}

func TestReload(t *testing.T) {
	newAddr := tcptest.FreeAddr(t)
	tests := []struct {
		name        string
		reload      func(Generation) (Generation, error)
		wantGen     int
		wantWorkers int
	}{
		{name: "same settings", reload: func(c Generation) (Generation, error) { return c, nil }, wantGen: 2, wantWorkers: 2},
		{name: "more workers", reload: func(c Generation) (Generation, error) { c.Workers = 3; return c, nil }, wantGen: 2, wantWorkers: 3},
		{name: "fewer workers", reload: func(c Generation) (Generation, error) { c.Workers = 1; return c, nil }, wantGen: 2, wantWorkers: 1},
		{name: "invalid config", reload: func(c Generation) (Generation, error) { return c, errors.New("bad key") }, wantGen: 1, wantWorkers: 2},
		{name: "new address", reload: func(c Generation) (Generation, error) { c.Listen = newAddr; return c, nil }, wantGen: 2, wantWorkers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(2, behaveWell, "")
			base := cfg.Generation
			cfg.Reload = func() (Generation, error) { return tt.reload(base) }
			h := startMaster(t, cfg, func(*Master) {})
			h.allowErrorLogs = tt.wantGen == 1
			before := h.waitAllReady(t, 2)
			h.m.Signal(unix.SIGHUP)
			if tt.wantGen == 1 {
				waitFor(t, "reload refused", func() bool {
					return h.logs.FilterMessageSnippet("reload failed").Len() == 1
				})
			} else {
				waitFor(t, "new generation", func() bool { return h.m.Generation() == tt.wantGen })
			}
			after := h.waitAllReady(t, tt.wantWorkers)
			for i, w := range after {
				if i < len(before) && (w.Pid == before[i].Pid) != (tt.wantGen == 1) {
					t.Errorf("slot %d after SIGHUP: %+v, before: %+v", i, w, before[i])
				}
			}
			if tt.wantGen == 1 {
				return
			}
			if got := h.m.Addr().String(); (got == newAddr) != (tt.name == "new address") {
				t.Errorf("address %s after the reload", got)
			}
			if _, _, err := askSlot(h.m.Addr().String()); err != nil {
				t.Errorf("new generation does not answer: %v", err)
			}
			for _, w := range before {
				waitFor(t, "old worker drained", func() bool {
					return len(h.logged("old worker exited", "pid", w.Pid)) == 1
				})
			}
		})
	}
}

func TestReloadKillsOldWorkersAtDrainTimeout(t *testing.T) {
	cfg := fakeConfig(1, behaveIgnoreTerm, "")
	cfg.Generation.ShutdownTimeout, cfg.Generation.DrainTimeout = 300*time.Millisecond, 300*time.Millisecond
	h := startMaster(t, cfg, nil)
	old := h.waitAllReady(t, 1)[0].Pid
	h.m.Signal(unix.SIGHUP)
	waitFor(t, "old worker killed", func() bool {
		return len(h.logged("old worker did not drain in time; killing", "pid", old)) == 1 &&
			len(h.logged("old worker exited", "pid", old)) == 1
	})
}

func TestRecyclesOnRequest(t *testing.T) {
	h := startMaster(t, fakeConfig(2, behaveRecycle, "1"), nil)
	first := h.waitAllReady(t, 2)
	waitFor(t, "slot 1 recycled", func() bool {
		return len(h.logged("old worker exited", "pid", first[1].Pid)) == 1
	})
	if got := h.logged("recycling worker", "pid", first[0].Pid); len(got) != 0 {
		t.Errorf("slot 0 was recycled without asking")
	}
	if ws := h.waitAllReady(t, 2); ws[0].Pid != first[0].Pid {
		t.Errorf("slot 0 changed from %d to %d", first[0].Pid, ws[0].Pid)
	}
}

func TestScaling(t *testing.T) {
	h := startMaster(t, fakeConfig(1, behaveWell, ""), nil)
	h.waitAllReady(t, 1)
	h.m.Signal(unix.SIGTTIN)
	ws := h.waitAllReady(t, 2)
	h.m.Signal(unix.SIGTTOU)
	h.waitAllReady(t, 1)
	waitFor(t, "removed worker exits", func() bool {
		return len(h.logged("old worker exited", "pid", ws[1].Pid)) == 1
	})
	h.m.Signal(unix.SIGTTOU)
	waitFor(t, "last worker kept", func() bool {
		return h.logs.FilterMessage("not removing the last worker").Len() == 1
	})
}

func TestKillsStragglers(t *testing.T) {
	cfg := fakeConfig(2, behaveIgnoreTerm, "")
	cfg.Generation.ShutdownTimeout = 300 * time.Millisecond
	h := startMaster(t, cfg, nil)
	ws := h.waitAllReady(t, 2)

	h.cancel()
	if err := h.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	kills := h.logs.FilterMessage("workers did not stop in time; killing").All()
	if len(kills) != 1 {
		t.Fatalf("straggler warnings: %v", kills)
	}
	if got, want := fmt.Sprint(kills[0].ContextMap()["pids"]), fmt.Sprint([]int{ws[0].Pid, ws[1].Pid}); got != want {
		t.Errorf("killed pids %s, want %s", got, want)
	}
	for _, w := range ws {
		if got := h.logged("worker stopped", "pid", w.Pid); len(got) != 1 || got[0].ContextMap()["status"] != "signal: killed" {
			t.Errorf(`"worker stopped" for pid %d: %v`, w.Pid, got)
		}
	}
}

func TestPortInUse(t *testing.T) {
	tests := []struct {
		name   string
		occupy func() (net.Listener, error)
	}{
		{name: "plain listener", occupy: func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }},
		{name: "SO_REUSEPORT listener", occupy: func() (net.Listener, error) { return reuseport.Listen("tcp", "127.0.0.1:0") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taken, err := tt.occupy()
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			cfg := fakeConfig(2, behaveWell, "")
			cfg.Generation.Listen = taken.Addr().String()
			h := startMaster(t, cfg, nil)

			err = h.wait(t)
			if want := "listen " + cfg.Generation.Listen + ": address already in use"; err == nil || err.Error() != want {
				t.Fatalf("Run = %v, want %q", err, want)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("Run error %v is not EADDRINUSE", err)
			}
			if n := h.logs.FilterMessage("worker started").Len(); n != 0 {
				t.Errorf("%d workers started", n)
			}
		})
	}
}

func TestNoWorkerCouldStart(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		wantExit bool   // the error carries an *ExitError
		wantText string // the error's tail
	}{
		{name: "every worker exits", path: os.Args[0], wantExit: true, wantText: "exited: exit status 1"},
		{name: "missing binary", path: "/nonexistent/rpcd", wantText: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(2, behaveExit, "")
			cfg.Path = tt.path
			h := startMaster(t, cfg, func(m *Master) { m.backoff.first = 10 * time.Millisecond })

			err := h.wait(t)
			if err == nil {
				t.Fatal("Run = nil, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "no worker could start: slot ") || !strings.HasSuffix(msg, tt.wantText) {
				t.Errorf("Run = %q, want no worker could start ... %s", msg, tt.wantText)
			}
			var exit *ExitError
			if errors.As(err, &exit) != tt.wantExit {
				t.Errorf("errors.As(%v, *ExitError) = %v, want %v", err, !tt.wantExit, tt.wantExit)
			}
			if got := h.readyCalls.Load(); got != 0 {
				t.Errorf("OnReady called %d times", got)
			}
		})
	}
}

func TestCrashLoopBackoffGrows(t *testing.T) {
	h := startMaster(t, fakeConfig(2, behaveExit, "1"), func(m *Master) {
		m.backoff = backoff{first: 20 * time.Millisecond, max: time.Second, stable: time.Minute}
	})
	h.allowErrorLogs = true
	crashLoop := func() []observer.LoggedEntry { return h.logs.FilterMessage("worker slot crash-looping").All() }
	waitFor(t, "three crash-loop reports", func() bool { return len(crashLoop()) >= 3 })

	var lastDelay time.Duration
	for i, e := range crashLoop()[:3] {
		fields := e.ContextMap()
		if e.Level != zapcore.ErrorLevel || fields["slot"] != int64(1) {
			t.Errorf("report %d: %s %v", i, e.Level, fields)
		}
		if got, want := fields["failures"], int64(crashLoopFailures+i); got != want {
			t.Errorf("report %d: failures %v, want %d", i, got, want)
		}
		delay, _ := fields["next_delay"].(time.Duration)
		if delay <= lastDelay {
			t.Errorf("report %d: next delay %v after %v, want it to grow", i, delay, lastDelay)
		}
		lastDelay = delay
	}
	ws := h.m.Workers()
	if !ws[0].Ready || ws[0].Failures != 0 {
		t.Errorf("healthy slot 0: %+v", ws[0])
	}
	if ws[1].Failures < crashLoopFailures {
		t.Errorf("crashing slot 1: %+v, want failures >= %d", ws[1], crashLoopFailures)
	}
	if got := h.readyCalls.Load(); got != 0 {
		t.Errorf("OnReady called %d times with slot 1 never ready", got)
	}
}

func TestKillsWorkerNotReadyInTime(t *testing.T) {
	cfg := fakeConfig(2, behaveNeverReady, "1")
	cfg.Generation.StartTimeout = 200 * time.Millisecond
	h := startMaster(t, cfg, nil)
	var first int
	waitFor(t, "slot 1 started", func() bool {
		ws := h.m.Workers()
		first = 0
		if len(ws) == 2 {
			first = ws[1].Pid
		}
		return first != 0
	})
	waitFor(t, "slot 1 replaced", func() bool {
		ws := h.m.Workers()
		return ws[1].Pid != 0 && ws[1].Pid != first
	})
	if got := h.logged("worker not ready in time; killing", "pid", first); len(got) != 1 {
		t.Errorf(`"worker not ready in time" for pid %d: %v`, first, got)
	}
	if ws := h.m.Workers(); !ws[0].Ready {
		t.Errorf("slot 0 not ready: %+v", ws[0])
	}
}

func TestReapsUnknownChildren(t *testing.T) {
	h := startMaster(t, fakeConfig(1, behaveWell, ""), nil)
	h.waitAllReady(t, 1)

	// A child the master did not start, as an orphan reparented to PID 1
	// would be.
	stray, err := os.StartProcess(os.Args[0], []string{os.Args[0]}, &os.ProcAttr{
		Env: append(os.Environ(), WorkerSlotEnv+"=stray", behaviourEnv+"="+behaveExit),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stray child reaped", func() bool {
		return len(h.logged("reaped unknown child", "pid", stray.Pid)) == 1
	})
	if _, err := os.Stat("/proc/" + strconv.Itoa(stray.Pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray child %d still in /proc: %v", stray.Pid, err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := backoff{first: 100 * time.Millisecond, max: 10 * time.Second}
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{failures: 1, want: 100 * time.Millisecond},
		{failures: 2, want: 200 * time.Millisecond},
		{failures: 3, want: 400 * time.Millisecond},
		{failures: 7, want: 6400 * time.Millisecond},
		{failures: 8, want: 10 * time.Second},
		{failures: 1000, want: 10 * time.Second},
	}
	for _, tt := range tests {
		if got := b.delay(tt.failures); got != tt.want {
			t.Errorf("delay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no listen address", cfg: Config{Generation: Generation{Workers: 1}}},
		{name: "negative workers", cfg: Config{Generation: Generation{Listen: "127.0.0.1:0", Workers: -1}}},
		{name: "negative worker timeout", cfg: Config{Generation: Generation{Listen: "127.0.0.1:0", WorkerTimeout: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestRunsOneMasterPerProcess(t *testing.T) {
	h := startMaster(t, fakeConfig(1, behaveWell, ""), nil)
	h.waitAllReady(t, 1)

	second, err := New(fakeConfig(1, behaveWell, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); err == nil {
		t.Error("a second master ran in the same process")
	}
	if err := h.m.Run(context.Background()); err == nil {
		t.Error("Run ran twice")
	}
}
