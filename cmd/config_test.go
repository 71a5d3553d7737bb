//go:build linux

package cmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
)

func TestApplyConfigFile(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		args        []string
		wantErr     string
		wantWorkers int
		wantDrain   time.Duration
	}{
		{name: "values", file: "workers: 5\ndrain-timeout: 3s\n", wantWorkers: 5, wantDrain: 3 * time.Second},
		{name: "command line wins", file: "workers: 5\n", args: []string{"-workers=2"}, wantWorkers: 2, wantDrain: 30 * time.Second},
		// A file that sets nothing is refused, at start, -t and SIGHUP
		// alike: taken as it is, it would move the server to the default
		// address.
		{name: "empty file", file: "", args: []string{"-workers=7"}, wantErr: "sets nothing"},
		{name: "comments only", file: "# rpcd\n# listen: 10.0.0.1:9000\n", wantErr: "sets nothing"},
		{name: "empty mapping", file: "{}\n", wantErr: "sets nothing"},
		{name: "listen without port", file: "listen: bogus\n", wantErr: "missing port"},
		{name: "listen port out of range", file: "listen: 127.0.0.1:99999\n", wantErr: "invalid port"},
		{name: "listen host that does not resolve", file: "listen: no-such-host.invalid:8080\n", wantErr: "no-such-host.invalid"},
		{name: "listen on localhost", file: "listen: localhost:0\nworkers: 2\n", wantWorkers: 2, wantDrain: 30 * time.Second},
		{name: "unknown key", file: "wokers: 5\n", wantErr: `line 1: unknown key "wokers"`},
		{name: "action is no key", file: "version: true\n", wantErr: `unknown key "version"`},
		{name: "bad value", file: "workers: two\n", wantErr: "line 1: workers"},
		{name: "list value", file: "workers: [1, 2]\n", wantErr: "want a single value"},
		{name: "empty value", file: "listen:\n", wantErr: "want a single value"},
		{name: "key twice", file: "workers: 1\nworkers: 2\n", wantErr: "given twice"},
		{name: "not a mapping", file: "- workers\n", wantErr: "want a mapping"},
		{name: "bad yaml", file: "workers: [\n", wantErr: "parse config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rpcd.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			opts, err := resolve(append([]string{"-config=" + path}, tt.args...), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.workers != tt.wantWorkers || opts.drainTimeout != tt.wantDrain {
				t.Fatalf("workers %d, drain %v; want %d, %v", opts.workers, opts.drainTimeout, tt.wantWorkers, tt.wantDrain)
			}
		})
	}
}

func TestWorkerArgsCarryResolvedSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcd.yaml")
	if err := os.WriteFile(path, []byte("max-frame: 64KiB\nidle-timeout: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := resolve([]string{"-config=" + path, "-workers=3", "-t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := s.workerArgs()
	want := []string{"-idle-timeout=5s", "-max-frame=64KiB", "-workers=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("worker args %q, want %q", got, want)
	}
}

// The settings reach a worker through its environment, not its command line.
func TestWorkerEnvCarriesArgs(t *testing.T) {
	t.Setenv(notifySocketEnv, "/run/notify")
	t.Setenv(workerArgsEnv, `["-stale"]`)
	want := []string{"-redis-password=p w\n\"x\"", "-workers=3"}
	env := workerEnv(want)
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		switch name {
		case notifySocketEnv:
			t.Errorf("worker environment has %s", kv)
		case workerArgsEnv:
			t.Setenv(workerArgsEnv, val)
		}
	}
	t.Setenv(master.WorkerSlotEnv, "0")
	r, err := currentRole()
	if err != nil || !r.worker || !slices.Equal(r.args, want) {
		t.Fatalf("currentRole = %+v, %v; want a worker with args %q", r, err, want)
	}
	t.Setenv(workerArgsEnv, "not json")
	if _, err := currentRole(); err == nil {
		t.Error("currentRole accepted a malformed variable")
	}
}

func TestRunActions(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	empty, badListen := filepath.Join(dir, "empty.yaml"), filepath.Join(dir, "listen.yaml")
	os.WriteFile(good, []byte("workers: 2\n"), 0o644)
	os.WriteFile(bad, []byte("workers: 0\n"), 0o644)
	os.WriteFile(empty, []byte("# nothing yet\n"), 0o644)
	os.WriteFile(badListen, []byte("listen: bogus\n"), 0o644)
	tests := []runCase{
		{name: "test good config", args: []string{"-t", "-config=" + good}, wantStdout: "configuration " + good + " is ok"},
		{name: "test bad config", args: []string{"-t", "-config=" + bad}, wantCode: 2, wantStderr: "need at least 1"},
		{name: "missing config", args: []string{"-t", "-config=" + dir + "/none.yaml"}, wantCode: 2, wantStderr: "read config"},
		{name: "test empty config", args: []string{"-t", "-config=" + empty}, wantCode: 2, wantStderr: "sets nothing"},
		{name: "test listen without port", args: []string{"-t", "-config=" + badListen}, wantCode: 2, wantStderr: "missing port"},
		{name: "test port out of range", args: []string{"-t", "-listen=:99999"}, wantCode: 2, wantStderr: "invalid port"},
		{name: "test unresolvable host", args: []string{"-t", "-listen=no-such-host.invalid:8080"}, wantCode: 2, wantStderr: "no-such-host.invalid"},
		{name: "test numeric address", args: []string{"-t", "-listen=[::1]:8080"}, wantStdout: "is ok"},
		{name: "test localhost", args: []string{"-t", "-listen=localhost:8080"}, wantStdout: "is ok"},
		{name: "signal without pidfile", args: []string{"-s", "reload"}, wantCode: 1, wantStderr: "no -pidfile"},
		{name: "unknown signal", args: []string{"-s", "restart"}, wantCode: 2, wantStderr: "want reload, stop, quit or reopen"},
		{name: "missing pidfile", args: []string{"-s", "stop", "-pidfile=" + dir + "/none.pid"}, wantCode: 1, wantStderr: "read pid"},
		{name: "start with empty config", args: []string{"-config=" + empty}, wantCode: 2, wantStderr: "sets nothing"},
		{name: "short worker timeout", args: []string{"-worker-timeout=1s"}, wantCode: 2, wantStderr: "-worker-timeout"},
	}
	checkRuns(t, tests)
}

// Workers run with GOTRACEBACK=crash, so that the watchdog's SIGABRT
// leaves every thread's goroutine stack in their log, and without core
// files unless the master's own GOTRACEBACK=crash asks for them.
func TestWorkerEnvTraceback(t *testing.T) {
	for _, tt := range []struct {
		master string
		noCore bool
	}{
		{master: "", noCore: true},
		{master: "none", noCore: true},
		{master: "all", noCore: true},
		{master: "crash", noCore: false},
	} {
		t.Setenv("GOTRACEBACK", tt.master)
		var got []string
		noCore := false
		for _, kv := range workerEnv(nil) {
			if val, ok := strings.CutPrefix(kv, "GOTRACEBACK="); ok {
				got = append(got, val)
			}
			noCore = noCore || kv == noCoreEnv+"=1"
		}
		if len(got) != 1 || got[0] != "crash" || noCore != tt.noCore {
			t.Errorf("master GOTRACEBACK=%q: worker gets %q, no core %v; want [crash], %v", tt.master, got, noCore, tt.noCore)
		}
	}
}

func TestDisableCoreDumps(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_CORE, &before) })
	t.Setenv(noCoreEnv, "1")
	if err := disableCoreDumps(); err != nil {
		t.Fatal(err)
	}
	var after unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &after); err != nil {
		t.Fatal(err)
	}
	if after.Cur != 0 || after.Max != before.Max {
		t.Fatalf("core limit %+v after, %+v before; want a soft limit of 0 and the hard one kept", after, before)
	}
}

func TestListenErrorStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "no such host", err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, want: 2},
		{name: "resolver timed out", err: &net.DNSError{Err: "i/o timeout", Name: "db", IsTimeout: true}, want: 1},
		{name: "resolver failed", err: &net.DNSError{Err: "server misbehaving", Name: "db", IsTemporary: true}, want: 1},
		{name: "bad port", err: checkListen("127.0.0.1:99999"), want: 2},
		{name: "no port", err: checkListen("bogus"), want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := listenErrorStatus(fmt.Errorf("-listen: %w", tt.err)); got != tt.want {
				t.Fatalf("status %d for %v, want %d", got, tt.err, tt.want)
			}
		})
	}
}
