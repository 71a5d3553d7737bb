//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/protocol"
)

// TestMain runs rpcd's main instead of the tests in a process a test
// started, so process-level tests start the real server.
func TestMain(m *testing.M) {
	rpcdtest.Main(m, func() {
		failWorkerIfAsked()
		if os.Getenv(spinMethodEnv) == "1" {
			mainWithSpin()
			return
		}
		main()
	})
}

// server is one running rpcd master started by a test.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	logs   *logWatcher
	exited chan struct{}
	err    error // from cmd.Wait, once exited is closed
}

// startServer runs rpcd with args on 127.0.0.1:0 and waits for "master ready".
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	s := launch(t, append([]string{"-listen=127.0.0.1:0", "-log-format=json"}, args...)...)
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	s.addr, _ = ready.Fields["addr"].(string)
	if s.addr == "" {
		t.Fatalf("master ready without an addr: %v", ready.Fields)
	}
	return s
}

// launch starts rpcd with exactly args and returns without waiting.
func launch(t *testing.T, args ...string) *server {
	t.Helper()
	return launchBinary(t, os.Args[0], args...)
}

// launchBinary is launch for the binary at path.
func launchBinary(t *testing.T, path string, args ...string) *server {
	t.Helper()
	cmd := rpcdtest.Command(path, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: newLogWatcher(stderr), exited: make(chan struct{})}
	go func() {
		<-s.logs.eof // Wait closes the pipe; read it all first
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.cleanup)
	return s
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// cleanup stops whatever is still running and fails the test on any
// error-level log line, as nginx's test suite does.
func (s *server) cleanup() {
	select {
	case <-s.exited:
	default:
		syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.exited
	}
	for _, e := range s.logs.all() {
		if e.Level == "error" && !s.logs.allowed(e) {
			s.t.Errorf("error logged: %s", e.raw)
		}
	}
}

// waitExit waits for the master to exit and returns its exit code.
func (s *server) waitExit(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.t.Fatalf("rpcd still running after %v", timeout)
	}
	var exit *exec.ExitError
	if errors.As(s.err, &exit) {
		return exit.ExitCode()
	}
	if s.err != nil {
		s.t.Fatal(s.err)
	}
	return 0
}

// workerPids lists the master's live (not zombie) children from /proc.
func (s *server) workerPids() []int {
	return childPids(s.pid(), func(state string) bool { return state != "Z" })
}

// childPids lists parent's children from /proc whose state (R, S, Z, ...)
// keep accepts.
func childPids(parent int, keep func(state string) bool) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// Fields after the command's closing paren: state, ppid, ...
		rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(rest) > 1 && rest[1] == strconv.Itoa(parent) && keep(rest[0]) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// logEntry is one JSON log line.
type logEntry struct {
	Level  string
	Msg    string
	Fields map[string]any
	raw    string
}

// logWatcher collects a process's JSON log lines and lets tests wait for one.
type logWatcher struct {
	mu      sync.Mutex
	entries []logEntry
	changed chan struct{} // closed and replaced on each new line
	eof     chan struct{}
	allow   []string // messages allowed at error level
}

func newLogWatcher(r io.Reader) *logWatcher {
	w := &logWatcher{changed: make(chan struct{}), eof: make(chan struct{})}
	go w.read(r)
	return w
}

func (w *logWatcher) read(r io.Reader) {
	defer close(w.eof)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		e := logEntry{raw: line, Fields: map[string]any{}}
		if json.Unmarshal([]byte(line), &e.Fields) == nil {
			e.Level, _ = e.Fields["level"].(string)
			e.Msg, _ = e.Fields["msg"].(string)
		}
		w.mu.Lock()
		w.entries = append(w.entries, e)
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

func (w *logWatcher) all() []logEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]logEntry(nil), w.entries...)
}

func (w *logWatcher) allowed(e logEntry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, msg := range w.allow {
		if e.Msg == msg {
			return true
		}
	}
	return false
}

// allowErrors lets error-level lines with these messages pass cleanup.
func (w *logWatcher) allowErrors(msgs ...string) {
	w.mu.Lock()
	w.allow = append(w.allow, msgs...)
	w.mu.Unlock()
}

// wait returns the first entry matching match, failing after timeout.
func (w *logWatcher) wait(t *testing.T, timeout time.Duration, match func(logEntry) bool) logEntry {
	t.Helper()
	deadline := time.After(timeout)
	for seen := 0; ; {
		w.mu.Lock()
		entries, changed := w.entries, w.changed
		w.mu.Unlock()
		for ; seen < len(entries); seen++ {
			if match(entries[seen]) {
				return entries[seen]
			}
		}
		select {
		case <-changed:
		case <-w.eof:
			if len(w.all()) == seen {
				t.Fatalf("process exited before the awaited log line; logs:\n%s", w.dump())
			}
		case <-deadline:
			t.Fatalf("no awaited log line within %v; logs:\n%s", timeout, w.dump())
		}
	}
}

func (w *logWatcher) dump() string {
	var b strings.Builder
	for _, e := range w.all() {
		b.WriteString(e.raw + "\n")
	}
	return b.String()
}

// client is a test's connection to rpcd, speaking the protocol directly.
type client struct {
	net.Conn
	order protocol.ByteOrder
	buf   []byte
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c}
}

func (c *client) send(method, params string) error {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(protocol.AppendRequest(nil, c.order, method, []byte(params)))
	return err
}

// recv reads one answer and returns its out and raw result.
func (c *client) recv() (out, result string, err error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		body, n, err := protocol.Split(c.buf, c.order, 64<<20)
		if err != nil {
			return "", "", err
		}
		if n > 0 {
			var resp protocol.Response
			if err := protocol.ParseResponse(body, &resp); err != nil {
				return "", "", err
			}
			out, result = string(resp.Out), string(resp.Result)
			c.buf = c.buf[n:]
			return out, result, nil
		}
		var chunk [64 << 10]byte
		m, err := c.Read(chunk[:])
		c.buf = append(c.buf, chunk[:m]...)
		if err != nil {
			return "", "", err
		}
	}
}

func (c *client) call(t *testing.T, method, params string) (out, result string) {
	t.Helper()
	if err := c.send(method, params); err != nil {
		t.Fatal(err)
	}
	out, result, err := c.recv()
	if err != nil {
		t.Fatalf("%s %s: %v", method, params, err)
	}
	return out, result
}

func mustPing(t *testing.T, c *client, params string) {
	t.Helper()
	if out, res := c.call(t, "ping", params); out != "pong" || res != params {
		t.Fatalf("ping %s answered %s %s", params, out, res)
	}
}

func seq(conn, n int) string { return fmt.Sprintf(`"c%d-%d"`, conn, n) }
