// Package cachetest runs a throwaway redis-server for tests: on a free
// 127.0.0.1 port, without persistence, in a temporary directory. Tests skip
// where redis-server is not installed, unless RequireEnv is set.
package cachetest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireEnv set to 1 (as CI does) makes a missing redis-server fail tests
// instead of skipping them.
const RequireEnv = "RPCD_REQUIRE_REDIS"

// SkipMessage is why tests skip without the binary.
const SkipMessage = "install redis-server (apt-get install redis-server) to run the cache tests"

// startLimit bounds the wait for redis-server to answer.
const startLimit = 10 * time.Second

// Redis is one redis-server process owned by a test.
type Redis struct {
	Addr string
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server for the test, with args added to its command line
// (such as "--requirepass", "secret"), and stops it at cleanup. It skips the
// test when redis-server is not installed.
func Start(t testing.TB, args ...string) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but redis-server is not installed: %v", RequireEnv, err)
		}
		t.Skip(SkipMessage)
	}
	r := &Redis{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.Restart()
	t.Cleanup(r.Stop)
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Restart starts redis-server on the same port after Stop (Start calls it
// once) and waits until it answers PING.
func (r *Redis) Restart() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(r.cmd)
	deadline := time.Now().Add(startLimit)
	for !r.answers() {
		select {
		case <-done:
			r.t.Fatalf("redis-server on port %d exited at start", r.port)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d did not answer within %v", r.port, startLimit)
		}
	}
}

// answers reports whether the server answers PING now; a server that wants
// a password answers NOAUTH, which counts.
func (r *Redis) answers() bool {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// Stop kills the server and waits for it to exit; it may be restarted.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}
