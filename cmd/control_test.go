//go:build linux

package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLockPidfile(t *testing.T) {
	tests := []struct {
		name     string
		existing string // the file's content before; "" for no file
	}{
		{name: "no file"},
		{name: "stale pid", existing: "999999999\n"},
		{name: "pid of a live process, unlocked", existing: strconv.Itoa(os.Getppid()) + "\n"},
		{name: "garbage", existing: "not a pid at all, and longer than one\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rpcd.pid")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := lockPidfile(path, "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if want := strconv.Itoa(os.Getpid()) + "\n"; err != nil || string(b) != want {
				t.Fatalf("pidfile holds %q, %v; want %q", b, err, want)
			}
			if !lockedByOther(t, path) {
				t.Error("pidfile is not locked")
			}
			p.remove()
			if b, err := os.ReadFile(path); !os.IsNotExist(err) {
				t.Errorf("pidfile left behind: %q, %v", b, err)
			}
		})
	}
}

// A second master on a locked pidfile refuses, and leaves the file as the
// running master wrote it.
func TestLockPidfileHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcd.pid")
	first, err := lockPidfile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer first.remove()
	if err := os.WriteFile(path, []byte("4242\n"), 0o644); err != nil { // as another master's
		t.Fatal(err)
	}
	second, err := lockPidfile(path, "")
	if err == nil {
		second.remove()
		t.Fatal("a second lock on the pidfile succeeded")
	}
	if !strings.Contains(err.Error(), "locked by a running master (pid 4242)") {
		t.Errorf("error %q, want it to name the running master", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "4242\n" {
		t.Errorf("pidfile holds %q after the refusal, want 4242", b)
	}
}

// lockedByOther reports whether someone holds path locked, as -s tests it.
func lockedByOther(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == unix.EWOULDBLOCK
}

// -s signals only a pid whose pidfile a master holds locked: the pid in a
// stale file may belong to an unrelated process by now.
func TestSignalMasterRefusesStalePidfile(t *testing.T) {
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sleep.Process.Kill()
		sleep.Wait()
	}()
	path := filepath.Join(t.TempDir(), "rpcd.pid")
	if err := os.WriteFile(path, []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, []runCase{{name: "stale pidfile", args: []string{"-s", "stop", "-pidfile=" + path},
		wantCode: 1, wantStderr: "is stale"}})
	if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the unrelated process was signalled: %v", err)
	}

	// The same file locked, as a running master holds it: -s signals.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, []runCase{{name: "locked pidfile", args: []string{"-s", "stop", "-pidfile=" + path}}})
	if st, err := sleep.Process.Wait(); err != nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("sleep ended with %v, %v; want SIGTERM", st, err)
	}
}
