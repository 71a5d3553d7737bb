//go:build linux

package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// A stuck handler is answered timeout by the loop while it still runs; its
// late result is discarded and the conn's order holds.
func TestHandlerTimeoutAnswersStuckHandler(t *testing.T) {
	s := startWorker(t, Config{HandlerTimeout: 100 * time.Millisecond})
	c := dial(t, s.addr)
	c.write(append(append(request("ping", `1`), request("slow", `"stuck"`)...), request("ping", `2`)...))
	s.gates.waitStarted(t, "stuck")
	want := []string{`pong 1`, `error timeout`, `pong 2`}
	for i, w := range want {
		if got := describe(c.answer()); got != w {
			t.Fatalf("answer %d = %s, want %s", i, got, w)
		}
	}
	s.gates.open("stuck")
	// The late result must not surface as the answer to anything after it.
	for i := range 3 {
		if got := describe(c.call("ping", fmt.Sprint(10+i))); got != fmt.Sprintf("pong %d", 10+i) {
			t.Fatalf("ping after the late result = %s", got)
		}
	}
	st := s.waitStats(t, "answers counted", func(st Stats) bool { return st.Answered == 6 })
	if st.Errors != 1 {
		t.Fatalf("stats %+v, want exactly the timeout as an error", st)
	}
}

// A conn whose queue emptied at a timeout gets a new queue; the late result of
// the timed-out request must not fill the new queue's first slot.
func TestLateResultDoesNotFillNextQueue(t *testing.T) {
	s := startWorker(t, Config{PoolSize: 2, HandlerTimeout: 300 * time.Millisecond})
	c := dial(t, s.addr)
	c.write(request("slow", `"late"`))
	s.gates.waitStarted(t, "late")
	if e := c.errorAnswer(); e.Code != protocol.CodeTimeout {
		t.Fatalf("first answer %s, want timeout", e.Code)
	}
	sent := time.Now()
	c.write(request("slow", `"next"`))
	s.gates.waitStarted(t, "next")
	// "next" stays held, so its own answer is its timeout, at its deadline;
	// the late result of "late" arrives first and must be dropped, not taken
	// for the answer to "next".
	s.gates.open("late")
	if got := describe(c.answer()); got != `error timeout` {
		t.Fatalf("second answer = %s, want the second request's timeout", got)
	}
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Fatalf("second request answered after %v, before its deadline", d)
	}
	s.gates.open("next")
	c.expectPing()
}

// ctxWorker serves reg on 127.0.0.1 in this process with cfg.
func ctxWorker(t *testing.T, cfg Config, reg *rpc.Registry) string {
	t.Helper()
	lfd, port := listenLocal(t)
	w, err := New(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- w.Serve(lfd, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		w.Shutdown()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Serve did not return")
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func TestBlockingHandlerContext(t *testing.T) {
	const timeout = 2 * time.Second
	var ran atomic.Int64
	hold := make(chan struct{})
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, pingHandler)
	reg.Register("left", rpc.Blocking, func(ctx context.Context, _ []byte, rep *rpc.Reply) error {
		d, ok := ctx.Deadline()
		return rep.SetJSON(ok && time.Until(d) > 0 && time.Until(d) <= timeout)
	})
	reg.Register("obey", rpc.Blocking, func(ctx context.Context, _ []byte, rep *rpc.Reply) error {
		<-ctx.Done()
		return ctx.Err()
	})
	reg.Register("hold", rpc.Blocking, func(context.Context, []byte, *rpc.Reply) error {
		<-hold
		return nil
	})
	reg.Register("count", rpc.Blocking, func(context.Context, []byte, *rpc.Reply) error {
		ran.Add(1)
		return nil
	})
	addr := ctxWorker(t, Config{PoolSize: 1, HandlerTimeout: timeout}, reg)
	c := dial(t, addr)
	if got := describe(c.call("left", "")); got != " true" {
		t.Fatalf("left = %q, want a deadline within the timeout", got)
	}
	began := time.Now()
	if e := c.call2Error("obey"); e.Code != protocol.CodeTimeout {
		t.Fatalf("obey answered %s, want timeout", e.Code)
	}
	if d := time.Since(began); d < timeout {
		t.Fatalf("timeout after %v, before the deadline", d)
	}
	// The one pool goroutine is held past the deadline of the job queued
	// behind it: that job is answered timeout and never runs.
	c.write(append(request("hold", ""), request("count", "")...))
	for i := range 2 {
		if e := c.errorAnswer(); e.Code != protocol.CodeTimeout {
			t.Fatalf("answer %d: %s, want timeout", i, e.Code)
		}
	}
	close(hold)
	c.expectPing()
	if got := describe(c.call("count", "")); got != " null" {
		t.Fatalf("count = %s", got)
	}
	if n := ran.Load(); n != 1 {
		t.Fatalf("count ran %d times, want once: the expired job must not run", n)
	}
}

func (c *client) call2Error(method string) *protocol.Error {
	c.t.Helper()
	c.write(request(method, ""))
	return c.errorAnswer()
}

func TestNegativeHandlerTimeoutRejected(t *testing.T) {
	if _, err := New(Config{HandlerTimeout: -time.Second}, rpc.NewRegistry(), nil); err == nil {
		t.Fatal("New accepted a negative HandlerTimeout")
	}
}
