//go:build linux

package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 10 * time.Second

// gates lets a test hold Blocking "slow" requests until it opens their gate.
type gates struct {
	mu      sync.Mutex
	m       map[string]chan struct{}
	started chan string
	seen    map[string]bool // started names taken off the channel; waitStarted only
}

func newGates() *gates {
	return &gates{m: make(map[string]chan struct{}), started: make(chan string, 4096), seen: make(map[string]bool)}
}

func (g *gates) gate(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.m[name]
	if !ok {
		ch = make(chan struct{})
		g.m[name] = ch
	}
	return ch
}

func (g *gates) open(name string) {
	ch := g.gate(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (g *gates) openAll() {
	g.mu.Lock()
	names := make([]string, 0, len(g.m))
	for name := range g.m {
		names = append(names, name)
	}
	g.mu.Unlock()
	for _, name := range names {
		g.open(name)
	}
}

// waitStarted waits until the slow request named name has started running.
func (g *gates) waitStarted(t *testing.T, name string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for !g.seen[name] {
		select {
		case got := <-g.started:
			g.seen[got] = true
		case <-deadline:
			t.Fatalf("slow request %q never started", name)
		}
	}
}

func pingHandler(_ context.Context, params []byte, rep *rpc.Reply) error {
	rep.SetOut("pong")
	rep.SetRaw(params)
	return nil
}

// bigHandler answers params [k, n] with [k, "<n bytes>"].
func bigHandler(_ context.Context, params []byte, rep *rpc.Reply) error {
	var p [2]int
	if err := json.Unmarshal(params, &p); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "want [index, size]: %v", err)
	}
	rep.SetOut("big")
	rep.AppendRaw(fmt.Appendf(nil, `[%d,"%s"]`, p[0], strings.Repeat("x", p[1])))
	return nil
}

func testRegistry(g *gates) *rpc.Registry {
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, pingHandler)
	reg.Register("big", rpc.Inline, bigHandler)
	reg.Register("slow", rpc.Blocking, func(_ context.Context, params []byte, rep *rpc.Reply) error {
		var name string
		_ = json.Unmarshal(params, &name)
		g.started <- name
		<-g.gate(name)
		rep.SetOut("slow")
		rep.SetRaw(params)
		return nil
	})
	reg.Register("panic", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error { panic("boom") })
	reg.Register("panic_pooled", rpc.Blocking, func(context.Context, []byte, *rpc.Reply) error { panic("boom") })
	reg.Register("fail", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error { return errors.New("disk on fire") })
	reg.Register("reject", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error {
		return protocol.Errorf(protocol.CodeBadRequest, "no thanks")
	})
	return reg
}

// server is a Worker serving on 127.0.0.1 in this process.
type server struct {
	w     *Worker
	addr  string
	port  int
	gates *gates
	logs  *observer.ObservedLogs
	done  chan error
}

func startWorker(t *testing.T, cfg Config) *server {
	return startWorkerLogging(t, cfg, zapcore.InfoLevel)
}

// startWorkerLogging starts a worker whose logs at level and above are kept.
// The test fails on any error-level line other than a test handler's panic.
func startWorkerLogging(t *testing.T, cfg Config, level zapcore.Level) *server {
	t.Helper()
	g := newGates()
	return startServer(t, cfg, testRegistry(g), g, level)
}

// startServer starts a worker serving reg, whose Blocking "slow" handler, if
// any, waits on g.
func startServer(t *testing.T, cfg Config, reg *rpc.Registry, g *gates, level zapcore.Level) *server {
	t.Helper()
	core, logs := observer.New(level)
	s := launch(t, cfg, reg, zap.New(core))
	s.gates, s.logs = g, logs
	t.Cleanup(func() {
		g.openAll()
		s.stop(t)
		s.checkErrorLogs(t)
	})
	return s
}

// startQuiet starts a worker with cfg and reg on 127.0.0.1, logging
// nothing, and stops it when the test ends. A cleanup the caller adds
// afterwards runs before the stop.
func startQuiet(t *testing.T, cfg Config, reg *rpc.Registry) *server {
	t.Helper()
	s := launch(t, cfg, reg, nil)
	t.Cleanup(func() { s.stop(t) })
	return s
}

// launch starts a worker with cfg and reg on 127.0.0.1 and waits until it
// is ready; the caller stops it.
func launch(t *testing.T, cfg Config, reg *rpc.Registry, log *zap.Logger) *server {
	t.Helper()
	lfd, port := listenLocal(t)
	w, err := New(cfg, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{w: w, addr: fmt.Sprintf("127.0.0.1:%d", port), port: port, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() { s.done <- w.Serve(lfd, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("worker never became ready")
	}
	return s
}

// stop shuts the worker down and fails the test if Serve failed.
func (s *server) stop(t *testing.T) {
	s.w.Shutdown()
	if err := s.wait(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// wait returns Serve's result, or fails the test if Serve does not return.
func (s *server) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
		return nil
	}
}

func (s *server) checkErrorLogs(t *testing.T) {
	for _, e := range s.logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		if e.Message != "handler panicked" {
			t.Errorf("unexpected error log: %s %v", e.Message, e.ContextMap())
		}
	}
}

// waitStats polls the worker's stats until ok accepts them.
func (s *server) waitStats(t *testing.T, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st := s.w.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// listenLocal opens a listening socket on 127.0.0.1 with a free port.
func listenLocal(t *testing.T) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 512); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

// client speaks the protocol over a plain TCP connection.
type client struct {
	t    *testing.T
	conn *net.TCPConn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c.(*net.TCPConn), r: bufio.NewReader(c)}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// request encodes a request frame; params "" leaves params out.
func request(method, params string) []byte {
	var p []byte
	if params != "" {
		p = []byte(params)
	}
	return protocol.AppendRequest(nil, protocol.LittleEndian, method, p)
}

// rawFrame frames body as is.
func rawFrame(body string) []byte {
	b := make([]byte, protocol.HeaderSize, protocol.HeaderSize+len(body))
	protocol.LittleEndian.PutLen(b, uint32(len(body)))
	return append(b, body...)
}

// frame reads the next frame's body in order, or returns the read error.
func (c *client) frame(order protocol.ByteOrder) ([]byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		return nil, err
	}
	return protocol.ReadFrame(c.r, order, 1<<30, nil)
}

// peek waits for the next byte from the server, or the read error.
func (c *client) peek() ([]byte, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		return nil, err
	}
	return c.r.Peek(1)
}

// answer reads the next answer and returns its out and raw result.
func (c *client) answer() (out, result string) {
	c.t.Helper()
	body, err := c.frame(protocol.LittleEndian)
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	var resp protocol.Response
	if err := protocol.ParseResponse(body, &resp); err != nil {
		c.t.Fatalf("parse answer %q: %v", body, err)
	}
	return string(resp.Out), string(resp.Result)
}

// errorAnswer reads the next answer and requires it to be an error.
func (c *client) errorAnswer() *protocol.Error {
	c.t.Helper()
	out, result := c.answer()
	resp := protocol.Response{Out: []byte(out), Result: []byte(result)}
	e, ok := resp.AsError()
	if !ok {
		c.t.Fatalf("got %s %s, want an error answer", out, result)
	}
	return e
}

func (c *client) call(method, params string) (out, result string) {
	c.t.Helper()
	c.write(request(method, params))
	return c.answer()
}

// expectPing checks the connection still answers a ping.
func (c *client) expectPing() {
	c.t.Helper()
	if out, result := c.call("ping", `"still here"`); out != "pong" || result != `"still here"` {
		c.t.Fatalf("ping answered %s %s", out, result)
	}
}

// expectEOF requires a clean end of stream with no bytes before it.
func (c *client) expectEOF() {
	c.t.Helper()
	if b, err := c.peek(); err != io.EOF {
		c.t.Fatalf("want a clean end of stream, got %q, %v", b, err)
	}
}

// expectClosed requires the server to close the connection, cleanly or not.
func (c *client) expectClosed() {
	c.t.Helper()
	b, err := c.peek()
	var ne net.Error
	switch {
	case err == nil:
		c.t.Fatalf("want the connection closed, got %q", b)
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatal("connection still open")
	}
}

// describe renders an answer as "out result", or "error code" for errors.
func describe(out, result string) string {
	resp := protocol.Response{Out: []byte(out), Result: []byte(result)}
	if e, ok := resp.AsError(); ok {
		return "error " + e.Code
	}
	return out + " " + result
}

// answersUntilEOF reads answers up to a clean end of stream.
func (c *client) answersUntilEOF() []string {
	c.t.Helper()
	var got []string
	for {
		body, err := c.frame(protocol.LittleEndian)
		if err == io.EOF {
			return got
		}
		if err != nil {
			c.t.Fatalf("after %d answers: %v", len(got), err)
		}
		var resp protocol.Response
		if err := protocol.ParseResponse(body, &resp); err != nil {
			c.t.Fatalf("parse answer %q: %v", body, err)
		}
		got = append(got, describe(string(resp.Out), string(resp.Result)))
	}
}

// waitLog waits until a log line with message msg has been written.
func (s *server) waitLog(t *testing.T, msg string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for s.logs.FilterMessage(msg).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line", msg)
		}
		time.Sleep(time.Millisecond)
	}
}
