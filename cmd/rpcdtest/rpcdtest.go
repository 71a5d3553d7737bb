//go:build linux

// Package rpcdtest lets the tests of a program built on cmd.Main start that
// program as a real binary: the test binary runs the program's main instead
// of the tests when Command started it, and its master re-executes the same
// binary, the marker included, for every worker.
//
//	func TestMain(m *testing.M) { rpcdtest.Main(m, main) }
//
//	c := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0")
package rpcdtest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
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
