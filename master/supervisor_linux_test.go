package master

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// fakeSys records what the master asks of the system, and reports the
// exits a test queues; no process is started.
type fakeSys struct {
	nextPid int
	started []fakeChild
	sent    map[int][]os.Signal
	exits   []fakeExit
	execs   [][]string // env of each exec
	onExec  func()     // if set, runs at each exec
}

type fakeChild struct {
	pid  int
	argv []string
	env  []string
}

type fakeExit struct {
	pid int
	st  unix.WaitStatus
}

type fakeProcess struct {
	sys *fakeSys
	pid int
}

func (p fakeProcess) Signal(sig os.Signal) error {
	p.sys.sent[p.pid] = append(p.sys.sent[p.pid], sig)
	return nil
}

func (fakeProcess) Release() error { return nil }

func (f *fakeSys) forkExec(_ string, argv, env []string, _ []uintptr) (int, process, error) {
	f.nextPid++
	f.started = append(f.started, fakeChild{pid: f.nextPid, argv: argv, env: env})
	return f.nextPid, fakeProcess{f, f.nextPid}, nil
}

func (f *fakeSys) findProcess(pid int) process { return fakeProcess{f, pid} }

func (f *fakeSys) reap() (int, unix.WaitStatus, bool) {
	if len(f.exits) == 0 {
		return 0, 0, false
	}
	e := f.exits[0]
	f.exits = f.exits[1:]
	return e.pid, e.st, true
}

func (f *fakeSys) exec(_ string, _, env []string) error {
	f.execs = append(f.execs, env)
	if f.onExec != nil {
		f.onExec()
	}
	return os.ErrPermission // the test process carries on
}

// exitStatus is a wait status for an exit with code, or death by sig.
func exitStatus(code int, sig unix.Signal) unix.WaitStatus {
	if sig != 0 {
		return unix.WaitStatus(sig)
	}
	return unix.WaitStatus(code << 8)
}

// sim drives a Master over fakeSys on a simulated clock: events go in
// through the same handlers the loop calls, and step runs as the loop runs
// it.
type sim struct {
	t     *testing.T
	m     *Master
	sys   *fakeSys
	logs  *observer.ObservedLogs
	now   time.Time
	hooks []string // the hooks called, in order: "ready", "stopping", "reloading", "reloaded"
}

func newSim(t *testing.T, workers int) *sim {
	t.Helper()
	return newSimWith(t, workers, nil)
}

// newSimWith is newSim with the Config changed by tweak before New.
func newSimWith(t *testing.T, workers int, tweak func(*Config)) *sim {
	t.Helper()
	s := newSimSetUp(t, workers, tweak)
	s.step()
	return s
}

// newSimSetUp is newSimWith before the first step.
func newSimSetUp(t *testing.T, workers int, tweak func(*Config)) *sim {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s := &sim{t: t, sys: &fakeSys{nextPid: 1000, sent: map[int][]os.Signal{}}, logs: logs,
		now: time.Unix(1e9, 0)}
	cfg := Config{Generation: Generation{Listen: "127.0.0.1:0", Workers: workers,
		StartTimeout: 5 * time.Second, WorkerTimeout: 3 * time.Second, Env: []string{}}, Path: "/bin/rpcd"}
	cfg.Hooks = Hooks{
		OnReady:     func() { s.hooks = append(s.hooks, "ready") },
		OnStopping:  func() { s.hooks = append(s.hooks, "stopping") },
		OnReloading: func() { s.hooks = append(s.hooks, "reloading") },
		OnReloaded:  func(error) { s.hooks = append(s.hooks, "reloaded") },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	m.sys = s.sys
	t.Cleanup(func() {
		close(m.done) // ends the pipe watchers
		// The pipes of the children that did not exit, so that their
		// watchers' reads end too.
		for _, w := range m.state.workers {
			w.status.Close()
		}
		if c := m.state.check; c != nil {
			c.out.Close()
		}
		m.closeAllSockets()
		signal.Stop(m.signals)
	})
	if err := m.setUp(s.now); err != nil {
		t.Fatal(err)
	}
	return s
}

// step runs step as the loop does: again at once while the master's wake
// timer would fire at once.
func (s *sim) step() {
	for range 10 {
		s.m.step(s.now)
		if at, ok := s.m.nextDeadline(s.now); !ok || at.After(s.now) {
			return
		}
	}
	s.t.Fatal("step still due after 10 turns")
}

// after advances the clock by d and steps.
func (s *sim) after(d time.Duration) {
	s.now = s.now.Add(d)
	s.step()
}

func (s *sim) signal(sig os.Signal) {
	s.m.onSignal(sig)
	s.step()
}

// stopReleased delivers the close of the stop's hold, as the loop's select
// does; it fails the test if the channel is not closed.
func (s *sim) stopReleased() {
	select {
	case <-s.m.state.stopHeld:
		s.m.onStopReleased()
	default:
		s.t.Fatal("the stop's hold is not released")
	}
	s.step()
}

// status delivers a status byte from pid.
func (s *sim) status(pid int, b byte) {
	w := s.m.state.workers[pid]
	if w == nil {
		s.t.Fatalf("no worker %d", pid)
	}
	s.m.onPipe(pipeEvent{seq: w.seq, data: []byte{b}, when: s.now})
	s.step()
}

// exit makes pid exit with st and reaps it, as SIGCHLD would.
func (s *sim) exit(pid int, st unix.WaitStatus) {
	s.sys.exits = append(s.sys.exits, fakeExit{pid, st})
	s.signal(unix.SIGCHLD)
}

// readyAll reports every started, unready worker ready.
func (s *sim) readyAll() {
	for _, c := range s.sys.started {
		if w := s.m.state.workers[c.pid]; w != nil && !w.ready {
			s.status(c.pid, StatusReady)
		}
	}
}

// upgrade sends SIGUSR2 and has the check run pass; the test fails unless
// the master then execs the new image, once.
func (s *sim) upgrade() {
	s.t.Helper()
	s.signal(unix.SIGUSR2)
	check := s.lastStarted()
	s.m.onPipe(pipeEvent{seq: s.m.state.check.seq, eof: true})
	s.exit(check, exitStatus(0, 0))
	if len(s.sys.execs) != 1 {
		s.t.Fatalf("%d execs, want 1", len(s.sys.execs))
	}
}

func (s *sim) lastStarted() int { return s.sys.started[len(s.sys.started)-1].pid }

func (s *sim) got(pid int, sig os.Signal) bool { return slices.Contains(s.sys.sent[pid], sig) }

func (s *sim) slotPids() []int {
	var pids []int
	for _, sl := range s.m.state.slots {
		if sl.worker != nil {
			pids = append(pids, sl.worker.pid)
		} else {
			pids = append(pids, 0)
		}
	}
	return pids
}

// Which requests wait, in which state, and what each does then.
func TestRequestsWaitWhileBusy(t *testing.T) {
	tests := []struct {
		name  string
		busy  func(s *sim) // puts the master in the state under test
		sig   unix.Signal
		waits bool
		// then checks what follows; started is how many processes had
		// been started before sig.
		then func(t *testing.T, s *sim, started int)
	}{
		{name: "reload when idle", sig: unix.SIGHUP},
		{name: "reload during a rollout", busy: rollingOut, sig: unix.SIGHUP, waits: true},
		{name: "reload during a check", busy: checking, sig: unix.SIGHUP, waits: true},
		{name: "upgrade during a rollout", busy: rollingOut, sig: unix.SIGUSR2, waits: true},
		{name: "upgrade during a check", busy: checking, sig: unix.SIGUSR2, waits: true},
		{name: "TTIN during a rollout", busy: rollingOut, sig: unix.SIGTTIN, waits: true},
		{name: "TTIN during a check", busy: checking, sig: unix.SIGTTIN},
		{name: "TTOU during a rollout", busy: rollingOut, sig: unix.SIGTTOU, waits: true},
		{name: "TTOU during a check", busy: checking, sig: unix.SIGTTOU},
		{name: "reopen during a rollout", busy: rollingOut, sig: unix.SIGUSR1},
		{name: "stop when idle", sig: unix.SIGTERM, then: stopsEverything},
		{name: "stop during a rollout", busy: rollingOut, sig: unix.SIGTERM, then: stopsEverything},
		{name: "stop during a check", busy: checking, sig: unix.SIGTERM, then: stopsEverything},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 2)
			s.readyAll()
			if tt.busy != nil {
				tt.busy(s)
			}
			started := len(s.sys.started)
			s.signal(tt.sig)
			act := signalActions[tt.sig]
			if waiting := s.m.state.requested&act != 0; waiting != tt.waits {
				t.Fatalf("request pending after the step: %v, want %v", waiting, tt.waits)
			}
			if tt.then != nil {
				tt.then(t, s, started)
			}
		})
	}
}

// stopsEverything checks a stop that has begun: the check run is killed,
// every worker is told to stop, the requests that follow are dropped so
// that no process starts, and the master is finished only once every
// child, the check run included, is reaped.
func stopsEverything(t *testing.T, s *sim, started int) {
	t.Helper()
	check := s.m.state.check
	if check != nil && !s.got(check.pid, unix.SIGKILL) {
		t.Error("check run not killed when the stop began")
	}
	for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGUSR2, unix.SIGTTIN, unix.SIGTTOU} {
		s.signal(sig)
	}
	for pid := range s.m.state.workers {
		if !s.got(pid, unix.SIGTERM) {
			t.Errorf("worker %d not told to stop", pid)
		}
		s.sys.exits = append(s.sys.exits, fakeExit{pid, exitStatus(0, 0)})
	}
	s.signal(unix.SIGCHLD)
	if check != nil {
		if s.m.finished() {
			t.Error("finished before the check run was reaped")
		}
		s.exit(check.pid, exitStatus(0, unix.SIGKILL))
	}
	if !s.m.finished() {
		t.Error("not finished once every child was reaped")
	}
	if n := len(s.sys.started) - started; n != 0 {
		t.Errorf("%d processes started after the stop", n)
	}
}

// rollingOut starts a reload whose workers are not ready yet.
func rollingOut(s *sim) {
	s.signal(unix.SIGHUP)
	if s.m.state.roll == nil {
		s.t.Fatal("no rollout")
	}
}

// checking starts an upgrade whose check run has not ended.
func checking(s *sim) {
	s.signal(unix.SIGUSR2)
	if s.m.state.check == nil {
		s.t.Fatal("no check run")
	}
}

// A rollout commits when its last worker is ready, and a TTIN that waited
// for it runs on the loop's next turn, at once.
func TestRolloutCommitsThenRunsWaitingRequest(t *testing.T) {
	s := newSim(t, 2)
	s.readyAll()
	old := s.slotPids()
	s.signal(unix.SIGHUP)
	s.signal(unix.SIGTTIN)
	if len(s.m.state.slots) != 2 {
		t.Fatalf("%d slots during the rollout, want 2", len(s.m.state.slots))
	}
	s.readyAll()
	if s.m.state.gen != 2 || len(s.m.state.slots) != 3 {
		t.Fatalf("generation %d with %d slots, want 2 with 3", s.m.state.gen, len(s.m.state.slots))
	}
	for _, pid := range old {
		if !s.got(pid, unix.SIGTERM) {
			t.Errorf("old worker %d not told to drain", pid)
		}
	}
}

// A new worker that exits aborts the rollout: the others are killed and
// the running generation serves on; the next step runs what waited.
func TestNewWorkerExitAbortsRollout(t *testing.T) {
	s := newSim(t, 2)
	s.readyAll()
	old := s.slotPids()
	s.signal(unix.SIGHUP)
	news := []int{s.lastStarted() - 1, s.lastStarted()}
	s.signal(unix.SIGHUP) // waits
	s.exit(news[0], exitStatus(1, 0))
	if s.m.state.roll == nil || s.m.state.roll.gen != 2 {
		t.Fatal("the waiting reload did not start a new rollout after the abort")
	}
	if !s.got(news[1], unix.SIGKILL) {
		t.Errorf("the other new worker %d was not killed", news[1])
	}
	if got := s.slotPids(); !slices.Equal(got, old) {
		t.Errorf("serving %v, want %v", got, old)
	}
}

// A worker killed while the new binary is checked is replaced after the
// backoff, and the check run's success execs with the handover, passing on
// the reload that waited for it.
func TestSuperviseDuringCheckThenExec(t *testing.T) {
	s := newSim(t, 2)
	s.readyAll()
	s.signal(unix.SIGUSR2)
	check := s.lastStarted()
	if argv := s.sys.started[len(s.sys.started)-1].argv; !slices.Equal(argv, []string{"/bin/rpcd", "-version"}) {
		t.Fatalf("check run argv %q", argv)
	}
	victim := s.slotPids()[0]
	s.exit(victim, exitStatus(0, unix.SIGKILL))
	s.signal(unix.SIGHUP)
	s.after(s.m.backoff.first)
	if pid := s.slotPids()[0]; pid == 0 || pid == victim {
		t.Fatalf("slot 0 not refilled during the check: %d", pid)
	}
	s.readyAll()
	s.m.onPipe(pipeEvent{seq: s.m.state.check.seq, eof: true})
	s.exit(check, exitStatus(0, 0))
	if len(s.sys.execs) != 1 {
		t.Fatalf("%d execs, want 1", len(s.sys.execs))
	}
	handover := handoverOf(s.sys.execs[0])
	h, err := parseHandover(handover)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.workers) != 2 || !slices.Equal(h.sigs, []os.Signal{unix.SIGHUP}) {
		t.Errorf("handover %q: want two workers and the waiting SIGHUP", handover)
	}
	// The fake exec failed: the master carries on and runs the reload.
	if s.m.state.roll == nil {
		t.Error("the reload did not run after the failed exec")
	}
}

// A check run that outlives its deadline is killed, and the upgrade fails.
func TestCheckKilledAtDeadline(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	s.signal(unix.SIGUSR2)
	check := s.lastStarted()
	s.after(checkTimeout)
	if !s.got(check, unix.SIGKILL) {
		t.Fatal("check run not killed at its deadline")
	}
	s.exit(check, exitStatus(0, unix.SIGKILL))
	if s.m.state.check != nil || len(s.sys.execs) != 0 {
		t.Fatalf("check %+v, %d execs; want it ended without an exec", s.m.state.check, len(s.sys.execs))
	}
	if n := s.logs.FilterMessage("upgrade failed; the running master carries on").Len(); n != 1 {
		t.Errorf("upgrade failure logged %d times", n)
	}
}

// The timed decisions: the watchdog, the start timeout, the backoff.
func TestTimedDecisions(t *testing.T) {
	tests := []struct {
		name     string
		run      func(s *sim) (pid int)
		wantKill bool
	}{
		{name: "silent ready worker killed", wantKill: true, run: func(s *sim) int {
			s.readyAll()
			s.after(3 * time.Second)
			s.after(abortGrace) // SIGABRT first (TestWatchdogAbortsThenKills)
			return s.slotPids()[0]
		}},
		{name: "heartbeat keeps a worker", run: func(s *sim) int {
			s.readyAll()
			s.after(2 * time.Second)
			s.status(s.slotPids()[0], StatusHeartbeat)
			s.after(2 * time.Second)
			return s.slotPids()[0]
		}},
		{name: "unready worker killed at start timeout", wantKill: true, run: func(s *sim) int {
			s.after(5 * time.Second)
			return s.slotPids()[0]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 1)
			pid := tt.run(s)
			if got := s.got(pid, unix.SIGKILL); got != tt.wantKill {
				t.Errorf("worker %d killed: %v, want %v", pid, got, tt.wantKill)
			}
		})
	}
}

// A crashed slot restarts after a doubling delay.
func TestRestartBackoff(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		s.exit(s.slotPids()[0], exitStatus(1, 0))
		s.after(want - time.Millisecond)
		if pid := s.slotPids()[0]; pid != 0 {
			t.Fatalf("failure %d: restarted before %v", i+1, want)
		}
		s.after(time.Millisecond)
		if pid := s.slotPids()[0]; pid == 0 {
			t.Fatalf("failure %d: not restarted after %v", i+1, want)
		}
	}
}

// A recycle request starts a replacement; the old worker drains once the
// replacement is ready.
func TestRecycleSteps(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	old := s.slotPids()[0]
	s.status(old, StatusRecycle)
	s.status(old, StatusRecycle) // repeats merge
	if n := len(s.sys.started); n != 2 {
		t.Fatalf("%d processes started, want the first and one replacement", n)
	}
	if s.got(old, unix.SIGTERM) {
		t.Fatal("old worker drained before its replacement was ready")
	}
	s.status(s.lastStarted(), StatusReady)
	if !s.got(old, unix.SIGTERM) || s.slotPids()[0] != s.lastStarted() {
		t.Errorf("after the replacement's ready: serving %v, old drained %v", s.slotPids(), s.got(old, unix.SIGTERM))
	}
}

// A reap that both fails a rollout and makes the master give up (no worker
// ever ready) begins a stop. The failed rollout then ends with the workers:
// the loop does not wake at once, turn after turn, to abort it.
func TestGiveUpDuringFailedRollout(t *testing.T) {
	s := newSim(t, 2)
	s.signal(unix.SIGHUP) // before any worker is ready
	if s.m.state.roll == nil {
		t.Fatal("no rollout")
	}
	incoming := s.lastStarted()
	for i := 1; i <= startAttempts; i++ {
		for _, pid := range s.slotPids() {
			s.sys.exits = append(s.sys.exits, fakeExit{pid, exitStatus(1, 0)})
		}
		if i == startAttempts {
			s.sys.exits = append(s.sys.exits, fakeExit{incoming, exitStatus(1, 0)})
		}
		s.signal(unix.SIGCHLD) // fails if step stays due turn after turn
		if i < startAttempts {
			s.after(s.m.backoff.delay(i))
		}
	}
	if !s.m.state.stopping || s.m.state.fatal == nil || s.m.state.roll == nil || s.m.state.roll.failed == nil {
		t.Fatalf("stopping %v, fatal %v, rollout %+v: want a stop after a failed rollout",
			s.m.state.stopping, s.m.state.fatal, s.m.state.roll)
	}
	if at, ok := s.m.nextDeadline(s.now); ok && !at.After(s.now) {
		t.Fatal("step due at once during the stop")
	}
	for pid := range s.m.state.workers {
		s.sys.exits = append(s.sys.exits, fakeExit{pid, exitStatus(0, 0)})
	}
	s.signal(unix.SIGCHLD)
	if !s.m.finished() {
		t.Error("not finished once every worker was reaped")
	}
}

// A stop caught while the check run ends cancels the upgrade, and runs
// before the reload that waited for the check: that reload never begins.
func TestStopCancelsUpgradeBeforeWaitingReload(t *testing.T) {
	s := newSim(t, 2)
	s.readyAll()
	s.signal(unix.SIGUSR2)
	check := s.lastStarted()
	s.signal(unix.SIGHUP) // waits for the check
	started := len(s.sys.started)
	s.hooks = nil
	s.m.signals <- unix.SIGTERM // caught, not read by the loop yet
	s.m.onPipe(pipeEvent{seq: s.m.state.check.seq, eof: true})
	s.exit(check, exitStatus(0, 0))
	if len(s.sys.execs) != 0 {
		t.Fatalf("%d execs, want the upgrade cancelled", len(s.sys.execs))
	}
	if !s.m.state.stopping || s.m.state.roll != nil || len(s.sys.started) != started {
		t.Errorf("stopping %v, rollout %v, %d processes started: want the stop and no reload",
			s.m.state.stopping, s.m.state.roll != nil, len(s.sys.started)-started)
	}
	if !slices.Equal(s.hooks, []string{"stopping"}) {
		t.Errorf("hooks %q, want only stopping", s.hooks)
	}
}

// A reload whose settings have a nil Env keeps the running generation's.
func TestReloadEnv(t *testing.T) {
	tests := []struct {
		name string
		env  []string // in what Reload returns
		want []string
	}{
		{name: "nil keeps the running one", env: nil, want: []string{"A=1"}},
		{name: "set replaces it", env: []string{"B=2"}, want: []string{"B=2"}},
		{name: "empty replaces it", env: []string{}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimWith(t, 1, func(cfg *Config) {
				cfg.Generation.Env = []string{"A=1"}
				cfg.Reload = func() (Generation, error) {
					return Generation{Listen: cfg.Generation.Listen, Workers: 1, Env: tt.env}, nil
				}
			})
			s.readyAll()
			s.signal(unix.SIGHUP)
			want := append(slices.Clone(tt.want), WorkerSlotEnv+"=0")
			if env := s.sys.started[len(s.sys.started)-1].env; !slices.Equal(env, want) {
				t.Errorf("new worker's env %q, want %q", env, want)
			}
			s.readyAll()
			if env := s.m.state.settings.Env; s.m.state.gen != 2 || !slices.Equal(env, tt.want) {
				t.Errorf("generation %d with env %q, want 2 with %q", s.m.state.gen, env, tt.want)
			}
		})
	}
}

// A replacement still starting when the master executes the new binary is
// killed, not handed over: the worker it was to replace serves on.
func TestUpgradeDropsStartingReplacement(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	old := s.slotPids()[0]
	s.status(old, StatusRecycle)
	next := s.lastStarted()
	s.upgrade()
	h, err := parseHandover(handoverOf(s.sys.execs[0]))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, a := range h.workers {
		pids = append(pids, a.pid)
	}
	if !slices.Equal(pids, []int{old}) {
		t.Errorf("handed over workers %v, want only %d", pids, old)
	}
	if !s.got(next, unix.SIGKILL) {
		t.Errorf("replacement %d not killed", next)
	}
}

// handoverOf returns the value of InheritEnv in env.
func handoverOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, InheritEnv+"="); ok {
			return v
		}
	}
	return ""
}

// Setting up from a handover only records: the first step announces the
// adopted workers ready, then begins the upgrade's rollout.
func TestAdoptAnnouncesThenRollsOut(t *testing.T) {
	socks, _, err := bindSockets("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	var status [2]int
	if err := unix.Pipe2(status[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(status[1]) })
	s := newSimSetUp(t, 1, func(cfg *Config) {
		cfg.Inherited = fmt.Sprintf("v1 gen=3 listen=127.0.0.1:0 socks=%d w=4242:0:3:%d:1:s", socks[0], status[0])
	})
	if len(s.hooks) != 0 || s.m.state.roll != nil {
		t.Fatalf("during setup: hooks %q, rollout %v; want neither", s.hooks, s.m.state.roll != nil)
	}
	s.step()
	if !slices.Equal(s.hooks, []string{"ready", "reloading"}) {
		t.Errorf("hooks %q, want ready then reloading", s.hooks)
	}
	if r := s.m.state.roll; r == nil || r.gen != 4 || r.why != "upgrade" {
		t.Errorf("rollout %+v, want the upgrade's generation 4", r)
	}
}

// The deadlines step is due at without an event, beyond the restarts and
// start timeouts.
func TestNextDeadline(t *testing.T) {
	tests := []struct {
		name string
		run  func(s *sim) time.Time // returns the deadline wanted
		done func(s *sim) bool      // what step did at that deadline
	}{
		{
			name: "check run's deadline",
			run: func(s *sim) time.Time {
				s.signal(unix.SIGUSR2)
				return s.now.Add(checkTimeout)
			},
			done: func(s *sim) bool { return s.got(s.m.state.check.pid, unix.SIGKILL) },
		},
		{
			name: "recycle waiting out its slot's backoff",
			run: func(s *sim) time.Time {
				old := s.slotPids()[0]
				s.status(old, StatusRecycle)
				s.exit(s.lastStarted(), exitStatus(1, 0)) // the replacement fails
				s.status(old, StatusRecycle)
				return s.now.Add(s.m.backoff.first)
			},
			done: func(s *sim) bool { return s.m.state.slots[0].replacement != nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimWith(t, 1, func(cfg *Config) { cfg.Generation.WorkerTimeout = 0 })
			s.readyAll()
			want := tt.run(s)
			at, ok := s.m.nextDeadline(s.now)
			if !ok || !at.Equal(want) {
				t.Fatalf("next deadline %v (%v), want %v", at.Sub(s.now), ok, want.Sub(s.now))
			}
			s.after(at.Sub(s.now))
			if !tt.done(s) {
				t.Error("nothing done at the deadline")
			}
		})
	}
}

// A request handed over to the next image always goes as the same signal.
func TestSignalForIsStable(t *testing.T) {
	for range 50 {
		if sig, ok := signalFor(actStop); !ok || sig != unix.SIGINT {
			t.Fatalf("signalFor(stop) = %v, %v; want the lowest-numbered, SIGINT", sig, ok)
		}
	}
}

// A failed check run's error carries how it exited, and its output.
func TestCheckResult(t *testing.T) {
	c := &binaryCheck{pid: 7, exited: true, status: exitStatus(2, 0), output: []byte("bad flag\n")}
	err := c.result("/bin/rpcd")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Pid != 7 || exit.Status.ExitStatus() != 2 {
		t.Fatalf("error %v does not carry the check run's exit", err)
	}
	if want := "check new binary /bin/rpcd: process 7 exited: exit status 2: bad flag"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// The watchdog sends a silent worker SIGABRT, for the stack dump, and
// SIGKILL only if it is still running abortGrace later.
func TestWatchdogAbortsThenKills(t *testing.T) {
	tests := []struct {
		name     string
		exits    bool // the worker dies of its SIGABRT within the grace
		wantKill bool
	}{
		{name: "still running after the grace", wantKill: true},
		{name: "exits on SIGABRT", exits: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 1)
			s.readyAll()
			hung := s.slotPids()[0]
			s.after(3*time.Second - time.Millisecond)
			if len(s.sys.sent[hung]) != 0 {
				t.Fatalf("worker sent %v before its timeout", s.sys.sent[hung])
			}
			s.after(time.Millisecond)
			if !s.got(hung, unix.SIGABRT) || s.got(hung, unix.SIGKILL) {
				t.Fatalf("at the timeout, worker sent %v; want SIGABRT alone", s.sys.sent[hung])
			}
			if at, ok := s.m.nextDeadline(s.now); !ok || !at.Equal(s.now.Add(abortGrace)) {
				t.Errorf("next deadline %v, %v; want the end of the grace, %v", at, ok, s.now.Add(abortGrace))
			}
			if tt.exits {
				s.exit(hung, exitStatus(2, 0)) // the Go runtime's exit after its dump
			}
			s.after(abortGrace - time.Millisecond)
			if s.got(hung, unix.SIGKILL) {
				t.Fatal("SIGKILL before the grace ended")
			}
			s.after(time.Millisecond)
			if got := s.got(hung, unix.SIGKILL); got != tt.wantKill {
				t.Fatalf("SIGKILL after the grace: %v, want %v", got, tt.wantKill)
			}
			if n := len(s.sys.sent[hung]); n != 1+btoi(tt.wantKill) {
				t.Errorf("worker sent %v; want each signal once", s.sys.sent[hung])
			}
			if !tt.exits {
				s.exit(hung, exitStatus(0, unix.SIGKILL))
			}
			s.after(time.Second) // the slot's restart backoff
			if pid := s.slotPids()[0]; pid == hung || pid == 0 {
				t.Errorf("slot runs %d after the hung worker %d, want a new worker", pid, hung)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Every SIGTTIN or SIGTTOU that reaches the loop counts: a burst read in
// one turn changes the worker count by as many slots.
func TestScaleCountsEverySignal(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	for range 20 {
		s.m.onSignal(unix.SIGTTIN)
	}
	s.step()
	if n := len(s.m.state.slots); n != 21 {
		t.Fatalf("%d slots after 20 SIGTTINs in one turn, want 21", n)
	}
	if n := len(s.m.state.workers); n != 21 {
		t.Fatalf("%d workers started, want 21", n)
	}
	s.readyAll()
	for range 25 {
		s.m.onSignal(unix.SIGTTOU)
	}
	s.step()
	if n := len(s.m.state.slots); n != 1 {
		t.Fatalf("%d slots after 25 SIGTTOUs in one turn, want 1 (never fewer)", n)
	}
	if s.m.state.slotsToAdd != 0 || s.m.state.slotsToDrop != 0 {
		t.Errorf("slots still to add %d, to drop %d; want none", s.m.state.slotsToAdd, s.m.state.slotsToDrop)
	}
	s.m.onSignal(unix.SIGTTIN)
	s.step()
	if n := len(s.m.state.slots); n != 2 {
		t.Errorf("%d slots after one more SIGTTIN, want 2: the excess SIGTTOUs must not linger", n)
	}
}

// A stop drops the slots still counted to add.
func TestStopDropsCountedSlots(t *testing.T) {
	s := newSim(t, 1)
	s.readyAll()
	for range 5 {
		s.m.onSignal(unix.SIGTTIN)
	}
	s.m.onSignal(unix.SIGTERM)
	s.step()
	if n, add := len(s.m.state.slots), s.m.state.slotsToAdd; n != 1 || add != 0 {
		t.Errorf("%d slots, %d still to add after a stop; want 1 and 0", n, add)
	}
}

// A reload that moves the server to another address says so at warn, with
// both addresses.
func TestReloadWarnsOfMovedListen(t *testing.T) {
	tests := []struct {
		name, next string
		wantWarn   bool
	}{
		{name: "same address", next: "127.0.0.1:0"},
		{name: "moved", next: "[::1]:0", wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimWith(t, 1, func(cfg *Config) {
				cfg.Reload = func() (Generation, error) { return Generation{Listen: tt.next, Workers: 1}, nil }
			})
			s.readyAll()
			s.signal(unix.SIGHUP)
			warns := s.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage("new generation moves the listen address").All()
			if got := len(warns) == 1; got != tt.wantWarn {
				t.Fatalf("%d warnings of a moved address, want one: %v", len(warns), tt.wantWarn)
			}
			if tt.wantWarn {
				f := warns[0].ContextMap()
				if f["old"] != "127.0.0.1:0" || f["new"] != tt.next {
					t.Errorf("warning names old %v, new %v; want 127.0.0.1:0 and %s", f["old"], f["new"], tt.next)
				}
			}
		})
	}
}
