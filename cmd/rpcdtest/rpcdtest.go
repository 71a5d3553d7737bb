//go:build linux

// Package rpcdtest lets the tests of a program built on cmd.Main start that
// program as a real binary: the test binary runs the program's main instead
// of the tests when Command started it, and its master re-executes the same
// binary, the marker included, for every worker.
//
//	func TestMain(m *testing.M) { rpcdtest.Main(m, main) }
//
//	c := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0")
//
// Serve starts such a command logging JSON and returns its listen address
// once its master is ready; the test's cleanup stops it.
package rpcdtest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// asProgramEnv marks a process of the test binary that is to run the
// program rather than the tests.
const asProgramEnv = "RPCD_TEST_AS_BINARY"

// Main is TestMain's role switch: in a process that Command started, or a
// worker of one, it runs main; otherwise it runs the tests. Either way it
// exits with their status.
func Main(m *testing.M, main func()) {
	if os.Getenv(asProgramEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Command returns the command that runs the test binary at path (a copy of
// os.Args[0], or os.Args[0] itself) as the program with args. It runs in a
// process group of its own, so that a test can kill the master and its
// workers at once, and the race detector does not delay its exit.
func Command(path string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), asProgramEnv+"=1", "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Serve starts cmd, a Command whose args include -log-format=json, and
// returns the address of its "master ready" log line. Cleanup sends the
// master SIGTERM and fails the test if the group has not exited within 15s,
// killing it then. It fails the test if the line does not come within 30s.
func Serve(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "master ready" {
				addrc <- line.Addr
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Errorf("%s did not stop on SIGTERM", cmd.Path)
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never logged master ready", cmd.Path)
		return ""
	}
}
