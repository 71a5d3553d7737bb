//go:build linux

package worker

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rpcd/rpcd/rpc"
)

// waitDraining waits until the worker has closed its listener.
func (s *server) waitDraining(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("worker still accepting after Shutdown")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestShutdownAnswersPipelinedRequests(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	c.expectPing()
	var batch []byte
	var want []string
	for i := range 300 {
		batch = append(batch, request("ping", fmt.Sprint(i))...)
		want = append(want, fmt.Sprintf("pong %d", i))
		if i == 100 {
			batch = append(batch, request("slow", `"in flight"`)...)
			want = append(want, `slow "in flight"`)
		}
	}
	c.write(batch)
	s.gates.waitStarted(t, "in flight")
	s.w.Shutdown()
	s.w.Shutdown() // a second call changes nothing
	s.waitDraining(t)
	s.gates.open("in flight")

	got := c.answersUntilEOF()
	if len(got) < 102 || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("got %d answers, want a prefix of the requests through the slow one: %q", len(got), got)
	}
	c.conn.Close() // ends the worker's linger on this conn
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if st := s.w.Stats(); st.Requests != uint64(len(got)+1) || st.Answered != st.Requests {
		t.Fatalf("client got %d answers; stats %+v", len(got)+1, st)
	}
}

// A frame half received when the drain starts is completed and answered; what
// follows it is not read, and the client sees a clean end of stream.
func TestShutdownCompletesHalfFrame(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	second := request("ping", `"second"`)
	c.write(append(request("ping", `"first"`), second[:7]...))
	if got := describe(c.answer()); got != `pong "first"` {
		t.Fatalf("first answer = %s", got)
	}
	s.w.Shutdown()
	s.waitDraining(t)
	c.write(append(second[7:], request("ping", `"too late"`)...))
	if got := c.answersUntilEOF(); !slices.Equal(got, []string{`pong "second"`}) {
		t.Fatalf("answers after shutdown = %q", got)
	}
	c.conn.Close()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	lfd, _ := listenLocal(t)
	w, err := New(Config{}, rpc.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Shutdown()
	done := make(chan error, 1)
	go func() { done <- w.Serve(lfd, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
	}
	if err := w.Serve(-1, nil); err == nil {
		t.Fatal("second Serve succeeded")
	}
	w.Shutdown() // after Serve returned: no effect, no panic
}

// A client that never closes is cut after the linger deadline, so Serve returns.
func TestShutdownLingerEnds(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	c.expectPing()
	s.w.Shutdown()
	c.expectEOF()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// A pooled job whose connection was reset does not hold up the drain.
func TestShutdownIgnoresOrphanedJob(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	c.write(request("slow", `"orphan"`))
	s.gates.waitStarted(t, "orphan")
	if err := c.conn.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.conn.Close() // reset
	s.waitStats(t, "the reset conn to close", func(st Stats) bool { return st.Open == 0 })
	s.w.Shutdown()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// A conn accepted just before the drain, whose client has not sent anything
// yet, gets its first request answered before the clean end of stream; one
// that stays silent is closed once drainGrace has passed.
func TestShutdownServesNewConnsFirstRequest(t *testing.T) {
	s := startWorker(t, Config{})
	talker, silent := dial(t, s.addr), dial(t, s.addr)
	s.waitStats(t, "both conns accepted", func(st Stats) bool { return st.Accepted == 2 })
	s.w.Shutdown()
	s.waitDraining(t)
	talker.write(request("ping", `"first"`))
	if got := talker.answersUntilEOF(); !slices.Equal(got, []string{`pong "first"`}) {
		t.Fatalf("answers after shutdown = %q", got)
	}
	silent.expectEOF()
	talker.conn.Close()
	silent.conn.Close()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}
