//go:build linux

package worker

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// asyncProbe is an Async method "later" driven by a socketpair the test
// holds: the handler queues its calls, and each byte the test writes to its
// end completes the oldest queued call with an echo of its params. A call
// whose params are "now" completes at once, "tick" after 20ms on a loop timer,
// and "boom" panics.
type asyncProbe struct {
	peer    chan int // the test's end of the socketpair, once the loop opens it
	closed  chan struct{}
	waiting []*rpc.AsyncCall
}

func newAsyncProbe() *asyncProbe {
	return &asyncProbe{peer: make(chan int, 1), closed: make(chan struct{})}
}

func (p *asyncProbe) open(loop rpc.Loop) rpc.AsyncHandler {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	if err := loop.Watch(fds[0], rpc.Readable, func(rpc.Events) { p.release(fds[0]) }); err != nil {
		panic(err)
	}
	loop.AtClose(func() {
		_ = loop.Unwatch(fds[0])
		_ = unix.Close(fds[0])
		close(p.closed)
	})
	p.peer <- fds[1]
	return p.handle
}

func (p *asyncProbe) handle(loop rpc.Loop, calls []*rpc.AsyncCall) {
	for _, c := range calls {
		switch string(c.Params) {
		case `"now"`:
			echo(c)
		case `"tick"`:
			loop.After(20*time.Millisecond, func() { echo(c) })
		case `"boom"`:
			panic("boom")
		default:
			p.waiting = append(p.waiting, c)
		}
	}
}

// release completes one queued call per byte read from fd.
func (p *asyncProbe) release(fd int) {
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return // EAGAIN: readiness that was gone
	}
	for range n {
		if len(p.waiting) == 0 {
			return
		}
		echo(p.waiting[0])
		p.waiting = p.waiting[1:]
	}
}

func echo(c *rpc.AsyncCall) {
	if string(c.Params) == `"bad"` {
		c.Err = protocol.Errorf(protocol.CodeBadRequest, "not that")
	} else {
		c.Reply.SetOut("later")
		c.Reply.SetRaw(c.Params)
	}
	c.Done()
}

// asyncWorker serves ping and the probe's "later", and returns a client of
// it, a function that completes n queued calls and one that waits until the
// worker has read n requests.
func asyncWorker(t *testing.T, cfg Config) (c *client, release func(n int), read func(n uint64)) {
	p := newAsyncProbe()
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, pingHandler)
	reg.RegisterAsync("later", p.open)
	peer := -1
	// Added before the worker's own cleanup, this runs after the stop.
	t.Cleanup(func() {
		if peer >= 0 {
			_ = unix.Close(peer)
			select {
			case <-p.closed:
			default:
				t.Error("the loop stopped without running the method's AtClose")
			}
		}
	})
	s := startQuiet(t, cfg, reg)
	release = func(n int) {
		t.Helper()
		if peer < 0 {
			select {
			case peer = <-p.peer:
			case <-time.After(waitLimit):
				t.Fatal("the loop never opened the async method")
			}
		}
		if _, err := unix.Write(peer, make([]byte, n)); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	read = func(n uint64) {
		t.Helper()
		s.waitStats(t, fmt.Sprintf("%d requests read", n), func(st Stats) bool { return st.Requests >= n })
	}
	return dial(t, s.addr), release, read
}

// Async calls are answered when their handler completes them, in their
// connection's order among inline answers, and each with its own error.
func TestAsyncOrder(t *testing.T) {
	c, release, _ := asyncWorker(t, Config{})
	c.write(frames([2]string{"ping", "1"}, [2]string{"later", `"a"`}, [2]string{"ping", "2"},
		[2]string{"later", `"now"`}, [2]string{"later", `"bad"`}, [2]string{"ping", "3"}))
	expectAnswers(t, c, `pong 1`)
	release(2)
	expectAnswers(t, c, `later "a"`, `pong 2`, `later "now"`, `error bad_request`, `pong 3`)
}

// A call may complete from a loop timer.
func TestAsyncTimer(t *testing.T) {
	c, _, _ := asyncWorker(t, Config{})
	began := time.Now()
	c.write(frames([2]string{"later", `"tick"`}, [2]string{"ping", "1"}))
	expectAnswers(t, c, `later "tick"`, `pong 1`)
	if d := time.Since(began); d < 20*time.Millisecond {
		t.Fatalf("timer call answered after %v, before its timer", d)
	}
}

// A call past its deadline is answered timeout in its place, and its late
// completion is dropped; the connection carries on.
func TestAsyncTimeout(t *testing.T) {
	c, release, read := asyncWorker(t, Config{HandlerTimeout: 200 * time.Millisecond})
	began := time.Now()
	c.write(frames([2]string{"later", `1`}, [2]string{"ping", "2"}))
	expectAnswers(t, c, `error timeout`, `pong 2`)
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Fatalf("timeout after %v, before the deadline", d)
	}
	release(1) // completes the timed-out call, whose answer is dropped
	c.write(request("later", `3`))
	// A ping answered on another conn after the worker read the call: the
	// handler has queued it by the next turn, which reads the release.
	read(3)
	dial(t, c.conn.RemoteAddr().String()).expectPing()
	release(1)
	expectAnswers(t, c, `later 3`)
}

// A timeout's answer owns its buffer: the answer of a call completed on the
// loop, which may reuse that buffer once it is written, leaves the next
// timeout's answer as it was.
func TestAsyncTimeoutAnswerOwnsItsBuffer(t *testing.T) {
	c, _, _ := asyncWorker(t, Config{HandlerTimeout: 50 * time.Millisecond})
	timeoutAnswer := func() string {
		t.Helper()
		c.write(request("later", `1`))
		body, err := c.frame(protocol.LittleEndian)
		if err != nil {
			t.Fatalf("read the timeout answer: %v", err)
		}
		return string(body)
	}
	first := timeoutAnswer()
	c.write(request("later", `"now"`))
	expectAnswers(t, c, `later "now"`)
	var resp protocol.Response
	if err := protocol.ParseResponse([]byte(first), &resp); err != nil || describe(string(resp.Out), string(resp.Result)) != `error timeout` {
		t.Fatalf("first answer %q: %v", first, err)
	}
	if second := timeoutAnswer(); second != first {
		t.Fatalf("timeout answers %q, then %q", first, second)
	}
}

// A panicking handler fails the calls it had not completed; the connection
// carries on.
func TestAsyncPanic(t *testing.T) {
	c, _, _ := asyncWorker(t, Config{})
	c.write(frames([2]string{"later", `"now"`}, [2]string{"later", `"boom"`}, [2]string{"ping", `1`}))
	expectAnswers(t, c, `later "now"`, `error internal`, `pong 1`)
}
