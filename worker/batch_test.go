//go:build linux

package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// batchProbe is a Batch method "echo" that reports each batch's params and
// answers only once the test releases that batch.
type batchProbe struct {
	batches chan []string
	release chan struct{}
}

func newBatchProbe() *batchProbe {
	return &batchProbe{batches: make(chan []string, 64), release: make(chan struct{}, 64)}
}

// handle answers each call "echo" with its params, but a call whose params
// are "bad" with bad_request, and panics on a call "boom".
func (p *batchProbe) handle(_ context.Context, calls []rpc.Call) {
	params := make([]string, len(calls))
	for i := range calls {
		params[i] = string(calls[i].Params)
	}
	p.batches <- params
	<-p.release
	for i := range calls {
		switch params[i] {
		case `"bad"`:
			calls[i].Err = protocol.Errorf(protocol.CodeBadRequest, "not that")
		case `"boom"`:
			panic("boom")
		default:
			calls[i].Reply.SetOut("echo")
			calls[i].Reply.SetRaw(calls[i].Params)
		}
	}
}

// next returns the params of the next batch that starts.
func (p *batchProbe) next(t *testing.T) []string {
	t.Helper()
	select {
	case b := <-p.batches:
		return b
	case <-time.After(waitLimit):
		t.Fatal("no batch started")
		return nil
	}
}

// noBatch fails if a batch is running or has started.
func (p *batchProbe) noBatch(t *testing.T) {
	t.Helper()
	select {
	case b := <-p.batches:
		t.Fatalf("unexpected batch %v", b)
	default:
	}
}

// batchWorker serves ping and the probe's echo, and returns a client of it
// and a way to wait until the worker has read n requests.
func batchWorker(t *testing.T, cfg Config) (p *batchProbe, c *client, read func(n uint64)) {
	p = newBatchProbe()
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, pingHandler)
	reg.RegisterBatch("echo", p.handle)
	s := startQuiet(t, cfg, reg)
	t.Cleanup(func() { close(p.release) }) // before the stop, which waits for the batch
	read = func(n uint64) {
		t.Helper()
		s.waitStats(t, fmt.Sprintf("%d requests read", n), func(st Stats) bool { return st.Requests >= n })
	}
	return p, dial(t, s.addr), read
}

func frames(reqs ...[2]string) []byte {
	var b []byte
	for _, r := range reqs {
		b = append(b, request(r[0], r[1])...)
	}
	return b
}

func expectAnswers(t *testing.T, c *client, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := describe(c.answer()); got != w {
			t.Fatalf("answer %d = %s, want %s", i, got, w)
		}
	}
}

// The calls read in one turn go as one batch; each is answered in its
// connection's order, among inline answers, with its own error if it has one.
func TestBatchOneTurnOneBatch(t *testing.T) {
	p, c, _ := batchWorker(t, Config{})
	c.write(frames([2]string{"ping", "1"}, [2]string{"echo", `"a"`}, [2]string{"ping", "2"},
		[2]string{"echo", `"bad"`}, [2]string{"echo", `"c"`}, [2]string{"ping", "3"}))
	if got := strings.Join(p.next(t), " "); got != `"a" "bad" "c"` {
		t.Fatalf("batch %s, want the three echo calls at once", got)
	}
	p.release <- struct{}{}
	expectAnswers(t, c, `pong 1`, `echo "a"`, `pong 2`, `error bad_request`, `echo "c"`, `pong 3`)
}

// While a batch is out, the calls read meanwhile wait and go as the next
// batch, all together, once it is back.
func TestBatchOneAtATime(t *testing.T) {
	p, c, read := batchWorker(t, Config{})
	c.write(request("echo", `1`))
	p.next(t)
	c2 := dial(t, c.conn.RemoteAddr().String())
	c.write(request("echo", `2`))
	c2.write(request("echo", `3`))
	read(3)
	// A ping answered on a third conn: the loop turned after reading both.
	dial(t, c.conn.RemoteAddr().String()).expectPing()
	p.noBatch(t)
	p.release <- struct{}{}
	if got := strings.Join(p.next(t), " "); got != `2 3` {
		t.Fatalf("second batch %s, want the two calls read while the first was out", got)
	}
	p.release <- struct{}{}
	expectAnswers(t, c, `echo 1`, `echo 2`)
	expectAnswers(t, c2, `echo 3`)
}

// Each call keeps its deadline: a call out in a held batch and one waiting
// behind it are answered timeout in order, the waiting one never runs, and
// the held batch's late answer is dropped.
func TestBatchTimeout(t *testing.T) {
	p, c, _ := batchWorker(t, Config{HandlerTimeout: 200 * time.Millisecond})
	began := time.Now()
	c.write(request("echo", `1`))
	p.next(t)
	c.write(request("echo", `2`))
	expectAnswers(t, c, `error timeout`, `error timeout`)
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Fatalf("timeout after %v, before the deadline", d)
	}
	p.release <- struct{}{}
	c.write(request("echo", `3`))
	if got := strings.Join(p.next(t), " "); got != `3` {
		t.Fatalf("batch after the timeouts %s, want only the new call", got)
	}
	p.release <- struct{}{}
	expectAnswers(t, c, `echo 3`)
}

// A panicking batch fails each of its calls; the connection carries on.
func TestBatchPanic(t *testing.T) {
	p, c, _ := batchWorker(t, Config{})
	c.write(frames([2]string{"echo", `"x"`}, [2]string{"echo", `"boom"`}, [2]string{"ping", `1`}))
	p.next(t)
	p.release <- struct{}{}
	expectAnswers(t, c, `error internal`, `error internal`, `pong 1`)
}

// Calls beyond QueueSize waiting for a batch are answered overloaded.
func TestBatchOverloaded(t *testing.T) {
	p, c, read := batchWorker(t, Config{QueueSize: 1})
	c.write(request("echo", `1`))
	p.next(t)
	c.write(frames([2]string{"echo", `2`}, [2]string{"echo", `3`}))
	read(3)
	p.release <- struct{}{}
	if got := strings.Join(p.next(t), " "); got != `2` {
		t.Fatalf("second batch %s, want the one call that fit", got)
	}
	p.release <- struct{}{}
	expectAnswers(t, c, `echo 1`, `echo 2`, `error overloaded`)
}
