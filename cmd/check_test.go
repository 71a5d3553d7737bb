//go:build linux

package cmd

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// TestMain lets a test start this binary as a process that only holds its
// command line, for -check-pid to read, until its stdin closes.
func TestMain(m *testing.M) {
	rpcdtest.Main(m, func() { io.Copy(io.Discard, os.Stdin) })
}

// startPingWorker runs an in-process worker with the built-in methods on
// 127.0.0.1 and returns its port.
func startPingWorker(t *testing.T) int {
	t.Helper()
	return startPingWorkerOrder(t, protocol.LittleEndian)
}

// startPingWorkerOrder is startPingWorker with the given byte order.
func startPingWorkerOrder(t *testing.T, order protocol.ByteOrder) int {
	t.Helper()
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	addr := workertest.Start(t, worker.Config{ByteOrder: order}, reg)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startFakeServer accepts connections on 127.0.0.1 and hands each to serve.
func startFakeServer(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	return tcptest.Serve(t, serve).(*net.TCPAddr).Port
}

// answerWith reads one request and answers the frame built by answer.
func answerWith(answer []byte) func(net.Conn) {
	return func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := protocol.ReadFrame(c, protocol.LittleEndian, protocol.DefaultMaxFrame, nil); err != nil {
			return
		}
		c.Write(answer)
	}
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestHealthCheck(t *testing.T) {
	pinger := startPingWorker(t)
	silent := startFakeServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	wrong := startFakeServer(t, answerWith(protocol.AppendResponse(nil, protocol.LittleEndian, "pong", []byte(`"someone else"`))))
	failing := startFakeServer(t, answerWith(protocol.AppendError(nil, protocol.LittleEndian,
		protocol.Errorf(protocol.CodeOverloaded, "busy"))))
	hangUp := startFakeServer(t, answerWith(nil)) // reads the ping, closes
	tests := []runCase{
		{name: "healthy", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", pinger)},
			wantStdout: "answered ping"},
		{name: "wildcard listen is checked on loopback", args: []string{fmt.Sprintf("-listen=0.0.0.0:%d", pinger)},
			wantStdout: fmt.Sprintf("127.0.0.1:%d answered ping", pinger)},
		{name: "empty host is checked on loopback", args: []string{fmt.Sprintf("-listen=:%d", pinger)},
			wantStdout: "answered ping"},
		{name: "nothing listening", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", closedPort(t))},
			wantCode: 1, wantStderr: "connect"},
		{name: "no answer in time", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", silent), "-check-timeout=200ms"},
			wantCode: 1, wantStderr: "i/o timeout"},
		{name: "wrong echo", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", wrong)},
			wantCode: 1, wantStderr: `answered pong "someone else"`},
		{name: "error answer", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", failing)},
			wantCode: 1, wantStderr: "answered error"},
		{name: "closed without answering", args: []string{fmt.Sprintf("-listen=127.0.0.1:%d", hangUp)},
			wantCode: 1, wantStderr: "EOF"},
		{name: "port zero", args: []string{"-listen=127.0.0.1:0"},
			wantCode: 1, wantStderr: "port 0"},
		{name: "bad address", args: []string{"-listen=nocolon"},
			wantCode: 1, wantStderr: "parse -listen"},
	}
	checkRuns(t, tests, "-check")
}

// holdCommandLine starts a process whose command line is the test binary
// with args, in dir, and returns its pid; it lives until the test ends.
func holdCommandLine(t *testing.T, dir string, args ...string) int {
	t.Helper()
	c := rpcdtest.Command(os.Args[0], args...)
	c.Dir = dir
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		c.Wait()
	})
	return c.Process.Pid
}

// exitedPid returns the pid of a process that has exited and been reaped.
func exitedPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestHealthCheckOfPid(t *testing.T) {
	little, big := startPingWorker(t), startPingWorkerOrder(t, protocol.BigEndian)
	dir := t.TempDir()
	config := fmt.Sprintf("listen: 0.0.0.0:%d\n", little)
	if err := os.WriteFile(filepath.Join(dir, "rpcd.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	pid := func(args ...string) string {
		return "-check-pid=" + strconv.Itoa(holdCommandLine(t, dir, args...))
	}
	tests := []runCase{
		{name: "its listen and byte order",
			args:       []string{pid(fmt.Sprintf("-listen=127.0.0.1:%d", big), "-byteorder=big", "-workers=1")},
			wantStdout: fmt.Sprintf("127.0.0.1:%d answered ping", big)},
		{name: "its config file, relative to its directory",
			args:       []string{pid("-config=rpcd.yaml")},
			wantStdout: fmt.Sprintf("127.0.0.1:%d answered ping", little)},
		{name: "its flags over its config file",
			args:       []string{pid("-config="+filepath.Join(dir, "rpcd.yaml"), fmt.Sprintf("-listen=127.0.0.1:%d", big), "-byteorder", "big")},
			wantStdout: fmt.Sprintf("127.0.0.1:%d answered ping", big)},
		{name: "its address, not -listen",
			args:     []string{pid(fmt.Sprintf("-listen=127.0.0.1:%d", closed)), fmt.Sprintf("-listen=127.0.0.1:%d", little)},
			wantCode: 1, wantStderr: fmt.Sprintf("127.0.0.1:%d: connect: connection refused", closed)},
		{name: "not an rpcd command line", args: []string{pid("-nope")},
			wantCode: 1, wantStderr: "parse command line of pid"},
		{name: "invalid settings", args: []string{pid("-workers=0")},
			wantCode: 1, wantStderr: "need at least 1"},
		{name: "exited", args: []string{"-check-pid=" + strconv.Itoa(exitedPid(t))},
			wantCode: 1, wantStderr: "read command line of pid"},
	}
	checkRuns(t, tests, "-check")
	checkRuns(t, []runCase{
		{name: "without -check", args: []string{"-check-pid=1"}, wantCode: 2, wantStderr: "-check-pid is for -check"},
		{name: "negative", args: []string{"-check", "-check-pid=-1"}, wantCode: 2, wantStderr: "want a pid"},
	})
}
