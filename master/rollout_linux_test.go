package master

import (
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
)

// reloadInto makes cfg's reload start workers that behave as behaviour.
func reloadInto(cfg *Config, behaviour string) {
	next := fakeGeneration(cfg.Generation.Workers, behaviour, "")
	cfg.Reload = func() (Generation, error) { return next, nil }
}

// waitIncoming waits for n workers of the rollout to start and returns
// their pids.
func (h *harness) waitIncoming(t *testing.T, n int) []int {
	t.Helper()
	var pids []int
	waitFor(t, "new generation started", func() bool {
		pids = pids[:0]
		for _, e := range h.logged("worker started", "as", incoming) {
			pids = append(pids, int(e.ContextMap()["pid"].(int64)))
		}
		return len(pids) == n
	})
	return pids
}

func msgIndex(entries []observer.LoggedEntry, msg string) int {
	return slices.IndexFunc(entries, func(e observer.LoggedEntry) bool { return e.Message == msg })
}

func TestReloadHooks(t *testing.T) {
	tests := []struct {
		name      string
		reloadErr error
		want      []string
	}{
		{name: "new generation", want: []string{"reloading", "reloaded: <nil>"}},
		{name: "invalid config", reloadErr: os.ErrInvalid, want: []string{"reloading", "reloaded: invalid argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fakeConfig(1, behaveWell, "")
			base := cfg.Generation
			cfg.Reload = func() (Generation, error) { return base, tt.reloadErr }
			h := startMaster(t, cfg, nil)
			h.allowErrorLogs = tt.reloadErr != nil
			h.waitAllReady(t, 1)
			h.m.Signal(unix.SIGHUP)
			waitFor(t, "reload ended", func() bool { return len(h.hooked()) == len(tt.want) })
			h.m.Signal(unix.SIGTERM)
			if err := h.wait(t); err != nil {
				t.Fatal(err)
			}
			if got, want := h.hooked(), append(tt.want, "stopping"); !slices.Equal(got, want) {
				t.Errorf("hooks %q, want %q", got, want)
			}
		})
	}
}

// A worker of the new generation that dies before it is ready aborts the
// whole rollout: the rest of the new generation is killed and the old one
// serves on.
func TestKilledNewWorkerAbortsRollout(t *testing.T) {
	cfg := fakeConfig(2, behaveWell, "")
	reloadInto(&cfg, behaveNeverReady)
	h := startMaster(t, cfg, nil)
	h.allowErrorLogs = true
	old := h.waitAllReady(t, 2)
	h.m.Signal(unix.SIGHUP)
	news := h.waitIncoming(t, 2)
	if err := unix.Kill(news[0], unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout aborted and the other new worker gone", func() bool {
		return h.logs.FilterMessage("reload failed; keeping the running generation").Len() == 1 &&
			len(h.logged("old worker exited", "pid", news[1])) == 1
	})
	if got := h.logged("old worker exited", "pid", news[1])[0].ContextMap()["status"]; got != "signal: killed" {
		t.Errorf("the other new worker ended with %v, want signal: killed", got)
	}
	if g := h.m.Generation(); g != 1 {
		t.Errorf("generation %d after the failed rollout, want 1", g)
	}
	if ws := h.waitAllReady(t, 2); ws[0].Pid != old[0].Pid || ws[1].Pid != old[1].Pid {
		t.Errorf("workers %+v after the failed rollout, want %+v", ws, old)
	}
	for range 20 {
		if _, pid, err := askSlot(h.m.Addr().String()); err != nil || (pid != old[0].Pid && pid != old[1].Pid) {
			t.Fatalf("answer from pid %d, %v; want an old worker", pid, err)
		}
	}
	if got := h.hooked(); len(got) != 2 || got[1] == "reloaded: <nil>" {
		t.Errorf("hooks %q, want reloading, then reloaded with the error", got)
	}
}

// SIGTERM during a rollout stops the new generation too, and a new worker
// that reports ready as the stop begins does not complete the rollout.
func TestStopDuringRollout(t *testing.T) {
	cfg := fakeConfig(2, behaveWell, "")
	catching := t.TempDir()
	next := fakeGeneration(2, behaveReadyLate, "")
	next.Env = append(next.Env, catchingDirEnv+"="+catching)
	cfg.Reload = func() (Generation, error) { return next, nil }
	h := startMaster(t, cfg, nil)
	old := h.waitAllReady(t, 2)
	h.m.Signal(unix.SIGHUP)
	news := h.waitIncoming(t, 2)
	for _, pid := range news {
		waitFor(t, "new worker catching SIGTERM", func() bool {
			_, err := os.Stat(filepath.Join(catching, strconv.Itoa(pid)))
			return err == nil
		})
	}
	h.m.Signal(unix.SIGTERM)
	if err := h.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for _, pid := range append(news, old[0].Pid, old[1].Pid) {
		if got := h.logged("worker stopped", "pid", pid); len(got) != 1 || got[0].ContextMap()["status"] != "exit status 0" {
			t.Errorf(`"worker stopped" for pid %d: %v`, pid, got)
		}
	}
	if n := h.logs.FilterMessage("new generation ready").Len(); n != 0 {
		t.Error("the rollout completed after the stop began")
	}
	if got, want := h.hooked(), []string{"reloading", "stopping"}; !slices.Equal(got, want) {
		t.Errorf("hooks %q, want %q", got, want)
	}
}

// Scaling asked for during a rollout waits for it to end, here by failing.
func TestScalingWaitsForRollout(t *testing.T) {
	cfg := fakeConfig(2, behaveWell, "")
	cfg.Generation.StartTimeout = 500 * time.Millisecond
	reloadInto(&cfg, behaveNeverReady)
	h := startMaster(t, cfg, nil)
	h.allowErrorLogs = true
	h.waitAllReady(t, 2)
	h.m.Signal(unix.SIGHUP)
	h.waitIncoming(t, 2)
	h.m.Signal(unix.SIGTTIN)
	waitFor(t, "the third worker", func() bool { return h.logs.FilterMessage("adding worker").Len() == 1 })
	h.waitAllReady(t, 3)
	entries := h.logs.All()
	failed, added := msgIndex(entries, "reload failed; keeping the running generation"), msgIndex(entries, "adding worker")
	if failed < 0 || added < failed {
		t.Errorf("worker added at log line %d, rollout failed at %d; want the add after", added, failed)
	}
	if g := h.m.Generation(); g != 1 {
		t.Errorf("generation %d, want 1", g)
	}
}

// A reload while the previous old generation still drains starts another
// generation; the drained ones are killed at their deadline.
func TestReloadDuringDrain(t *testing.T) {
	cfg := fakeConfig(1, behaveIgnoreTerm, "")
	cfg.Generation.DrainTimeout, cfg.Generation.ShutdownTimeout = time.Second, 300*time.Millisecond
	h := startMaster(t, cfg, nil)
	first := h.waitAllReady(t, 1)[0].Pid
	h.m.Signal(unix.SIGHUP)
	waitFor(t, "second generation", func() bool { return h.m.Generation() == 2 })
	second := h.waitAllReady(t, 1)[0].Pid
	h.m.Signal(unix.SIGHUP)
	waitFor(t, "third generation", func() bool { return h.m.Generation() == 3 })
	for _, pid := range []int{first, second} {
		waitFor(t, "drained worker killed", func() bool {
			got := h.logged("old worker exited", "pid", pid)
			return len(got) == 1 && got[0].ContextMap()["status"] == "signal: killed"
		})
	}
	if _, _, err := askSlot(h.m.Addr().String()); err != nil {
		t.Errorf("third generation does not answer: %v", err)
	}
}

// A signal caught before Run, while the process starts up, is acted on
// once Run starts instead of killing the process.
func TestSignalCaughtBeforeRun(t *testing.T) {
	sigs := CatchSignals()
	defer signal.Stop(sigs)
	if err := unix.Kill(unix.Getpid(), unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	cfg := fakeConfig(1, behaveWell, "")
	cfg.Signals = sigs
	h := startMaster(t, cfg, nil)
	waitFor(t, "the early SIGHUP's generation", func() bool { return h.m.Generation() == 2 })
	h.waitAllReady(t, 1)
	// The reload may complete before the first generation is ready: the
	// master is ready all the same.
	waitFor(t, "OnReady", func() bool { return h.readyCalls.Load() == 1 })
}
