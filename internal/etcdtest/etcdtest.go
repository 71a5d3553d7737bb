// Package etcdtest runs a single-member etcd for tests, on free 127.0.0.1
// ports with a temporary data directory. Without an etcd binary the test is
// skipped, or fails when RPCD_REQUIRE_ETCD=1.
package etcdtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
)

// Etcd is one etcd member run by a test.
type Etcd struct {
	// Addr is its client address, host:port.
	Addr    string
	peer    string
	dataDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Start starts etcd and waits until it serves; the test's cleanup stops
// it.
func Start(t testing.TB) *Etcd {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		if os.Getenv("RPCD_REQUIRE_ETCD") == "1" {
			t.Fatalf("etcd is required (RPCD_REQUIRE_ETCD=1): %v", err)
		}
		t.Skip("no etcd binary: apt-get install etcd-server")
	}
	dir := t.TempDir()
	e := &Etcd{Addr: freeAddr(t), peer: freeAddr(t), dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "etcd.log")}
	e.Restart(t)
	t.Cleanup(e.Stop)
	return e
}

// Restart starts a stopped etcd again on the same ports and data, and
// waits until it serves.
func (e *Etcd) Restart(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	e.cmd = exec.Command("etcd", "--name=test", "--data-dir="+e.dataDir,
		"--listen-client-urls=http://"+e.Addr, "--advertise-client-urls=http://"+e.Addr,
		"--listen-peer-urls=http://"+e.peer, "--initial-advertise-peer-urls=http://"+e.peer,
		"--initial-cluster=test=http://"+e.peer)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	e.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait() //nolint:errcheck // a stopped etcd exits by signal
		close(exited)
	}(e.cmd, e.exited)
	waitfor.Until(t, 20*time.Second, "etcd serving at "+e.Addr, func() bool {
		resp, err := http.Get("http://" + e.Addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop stops etcd and waits for it to exit.
func (e *Etcd) Stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill() //nolint:errcheck // it may have exited
		<-e.exited
	}
	e.cmd = nil
}

// Log returns what etcd has logged, for a failing test.
func (e *Etcd) Log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(fmt.Errorf("find a free port: %w", err))
	}
	defer l.Close()
	return l.Addr().String()
}
