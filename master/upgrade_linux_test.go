package master

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/internal/waitfor"
)

func TestParseHandover(t *testing.T) {
	tests := []struct {
		name    string
		desc    string
		want    handoverState
		wantErr string
	}{
		{
			name: "serving and retiring workers",
			desc: "v1 gen=3 listen=127.0.0.1:0 socks=5,6 w=100:0:3:7:1:s,101:1:3:8:0:s,90:2:2:9:1:r",
			want: handoverState{gen: 3, listen: "127.0.0.1:0", socks: []int{5, 6}, workers: []adopted{
				{pid: 100, slot: 0, gen: 3, statusFD: 7, ready: true, role: serving},
				{pid: 101, slot: 1, gen: 3, statusFD: 8, ready: false, role: serving},
				{pid: 90, slot: 2, gen: 2, statusFD: 9, ready: true, role: retiring},
			}, pidFD: -1},
		},
		{name: "no workers", desc: "v1 gen=1 listen=:8080 socks=3 w=",
			want: handoverState{gen: 1, listen: ":8080", socks: []int{3}, pidFD: -1}},
		{name: "pending signals", desc: "v1 gen=1 listen=:8080 socks=3 w= sigs=1,15",
			want: handoverState{gen: 1, listen: ":8080", socks: []int{3}, sigs: []os.Signal{unix.SIGHUP, unix.SIGTERM}, pidFD: -1}},
		{name: "locked pidfile", desc: "v1 gen=1 listen=:8080 socks=3 w= sigs= pidfile=7",
			want: handoverState{gen: 1, listen: ":8080", socks: []int{3}, pidFD: 7}},
		{name: "bad pidfile", desc: "v1 gen=1 listen=:1 socks=3 pidfile=x", wantErr: "parse pidfile"},
		{name: "unhandled signal", desc: "v1 gen=1 listen=:1 socks=3 sigs=9", wantErr: "parse sigs"},
		{name: "unknown version", desc: "v2 gen=1", wantErr: "unknown handover"},
		{name: "no sockets", desc: "v1 gen=1 listen=:1 w=", wantErr: "no sockets"},
		{name: "bad socket", desc: "v1 gen=1 listen=:1 socks=x", wantErr: "parse socks"},
		{name: "short worker", desc: "v1 gen=1 listen=:1 socks=3 w=1:2:3", wantErr: "want 6 fields"},
		{name: "bad listen", desc: "v1 gen=1 listen=nowhere socks=3", wantErr: "adopt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHandover(tt.desc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A slot that had no worker when the previous image handed over (its worker
// had crashed and waited for a restart) gets one from the new image, even
// when the new image's rollout fails.
func TestAdoptRefillsEmptySlot(t *testing.T) {
	socks, _, err := bindSockets("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fakeConfig(2, behaveNeverReady, "1")
	cfg.Generation.StartTimeout = 300 * time.Millisecond
	cfg.Inherited = fmt.Sprintf("v1 gen=4 listen=127.0.0.1:0 socks=%d w=", socks[0])
	h := startMaster(t, cfg, nil)
	h.allowErrorLogs = true
	waitFor(t, "rollout aborted", func() bool {
		return h.logs.FilterMessage("upgrade failed; keeping the running generation").Len() == 1
	})
	waitFor(t, "the handed-over slot served", func() bool {
		ws := h.m.Workers()
		return len(ws) == 1 && ws[0].Ready && ws[0].Generation == 4
	})
}

// While an upgrade checks the new binary, the master supervises as usual:
// a worker killed during a 5s check run has its replacement started within
// a second, and ready before the check run ends.
func TestSupervisesDuringCheck(t *testing.T) {
	cfg := fakeConfig(2, behaveWell, "")
	cfg.CheckArgs = []string{slowCheckArg}
	h := startMaster(t, cfg, nil)
	h.allowErrorLogs = true
	victim := h.waitAllReady(t, 2)[0].Pid
	h.m.Signal(unix.SIGUSR2)
	waitFor(t, "check run started", func() bool { return h.logs.FilterMessage("checking the new binary").Len() == 1 })
	checkStarted := time.Now()
	if err := unix.Kill(victim, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitfor.Until(t, time.Second, "killed worker's replacement started", func() bool {
		pid := h.m.Workers()[0].Pid
		return pid != 0 && pid != victim
	})
	waitFor(t, "killed worker's replacement ready", func() bool {
		ws := h.m.Workers()
		return ws[0].Pid != victim && ws[0].Ready
	})
	if h.logs.FilterMessageSnippet("upgrade failed").Len() != 0 || time.Since(checkStarted) >= slowCheckDuration {
		t.Fatal("the check run ended before the replacement was ready")
	}
	waitFor(t, "check run failed", func() bool {
		return len(h.logs.FilterMessage("upgrade failed; the running master carries on").All()) == 1
	})
	failed := h.logs.FilterMessage("upgrade failed; the running master carries on").All()[0]
	if msg := fmt.Sprint(failed.ContextMap()["error"]); !strings.Contains(msg, "exit status 1: check failed on purpose") {
		t.Errorf("upgrade error %q, want the check's status and output", msg)
	}
}

// An upgrade hands the locked pidfile over: its descriptor survives the
// exec (close-on-exec cleared), the handover names it, and the new image
// gets it back with close-on-exec set again. A failed exec sets it back.
func TestUpgradeHandsOverPidFile(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/rpcd.pid")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := rawFD(f)
	var cloexecAtExec bool
	s := newSimWith(t, 1, func(cfg *Config) { cfg.PidFile = f })
	s.sys.onExec = func() { cloexecAtExec = hasCloexec(t, fd) }
	s.readyAll()
	s.upgrade()
	if cloexecAtExec {
		t.Error("the pidfile was close-on-exec at the exec")
	}
	if !hasCloexec(t, fd) {
		t.Error("close-on-exec not set back after the failed exec")
	}
	handover := handoverOf(s.sys.execs[0])
	got, err := InheritedPidFile(handover)
	if err != nil || got == nil || rawFD(got) != fd {
		t.Fatalf("InheritedPidFile(%q) = %v, %v; want descriptor %d", handover, got, err, fd)
	}
	if none, err := InheritedPidFile("v1 gen=1 listen=127.0.0.1:1 socks=3"); none != nil || err != nil {
		t.Errorf("a handover without a pidfile gave %v, %v", none, err)
	}
}

func hasCloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.FD_CLOEXEC != 0
}
