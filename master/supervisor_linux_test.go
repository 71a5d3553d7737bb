package master

import (
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
}

type fakeChild struct {
	pid  int
	argv []string
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

func (f *fakeSys) forkExec(_ string, argv, _ []string, _ []uintptr) (int, process, error) {
	f.nextPid++
	f.started = append(f.started, fakeChild{pid: f.nextPid, argv: argv})
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
	t    *testing.T
	m    *Master
	sys  *fakeSys
	logs *observer.ObservedLogs
	now  time.Time
}

func newSim(t *testing.T, workers int) *sim {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := Config{Generation: Generation{Listen: "127.0.0.1:0", Workers: workers,
		StartTimeout: 5 * time.Second, WorkerTimeout: 3 * time.Second, Env: []string{}}, Path: "/bin/rpcd"}
	m, err := New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, m: m, sys: &fakeSys{nextPid: 1000, sent: map[int][]os.Signal{}}, logs: logs,
		now: time.Unix(1e9, 0)}
	m.sys = s.sys
	t.Cleanup(func() {
		close(m.done) // ends the pipe watchers
		m.closeAllSockets()
		signal.Stop(m.signals)
	})
	if err := m.setUp(s.now); err != nil {
		t.Fatal(err)
	}
	s.step()
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
		{name: "stop during a rollout", busy: rollingOut, sig: unix.SIGTERM},
		{name: "stop during a check", busy: checking, sig: unix.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, 2)
			s.readyAll()
			if tt.busy != nil {
				tt.busy(s)
			}
			s.signal(tt.sig)
			act := signalActions[tt.sig]
			if waiting := s.m.state.requested&act != 0; waiting != tt.waits {
				t.Fatalf("request pending after the step: %v, want %v", waiting, tt.waits)
			}
		})
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
	var handover string
	for _, kv := range s.sys.execs[0] {
		if v, ok := strings.CutPrefix(kv, InheritEnv+"="); ok {
			handover = v
		}
	}
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
