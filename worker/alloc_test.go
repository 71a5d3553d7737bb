//go:build linux

package worker

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// loopHarness drives one conn of a loop directly, over a socket pair, without
// running Serve.
type loopHarness struct {
	w     *Worker
	c     *conn
	peer  int
	req   []byte
	reply []byte
}

func newLoopHarness(tb testing.TB) *loopHarness {
	tb.Helper()
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, pingHandler)
	w, err := New(Config{}, reg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.openLoop(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.closeLoop)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fds[1]) })
	w.openConn(fds[0], nil)
	h := &loopHarness{w: w, c: w.conns[fds[0]], peer: fds[1]}
	h.req = protocol.AppendRequest(nil, protocol.LittleEndian, "ping", []byte(`"ireader 0"`))
	h.reply = make([]byte, 256)
	return h
}

// roundTrip sends one ping and has the loop read, decode, dispatch, encode and
// write its answer, as for one readable event.
func (h *loopHarness) roundTrip(tb testing.TB) {
	if _, err := unix.Write(h.peer, h.req); err != nil {
		tb.Fatal(err)
	}
	h.w.handleConn(h.c, readEvents)
	n, err := unix.Read(h.peer, h.reply)
	if err != nil || n < protocol.HeaderSize {
		tb.Fatalf("read answer: %d bytes, %v", n, err)
	}
}

func TestInlinePingDoesNotAllocate(t *testing.T) {
	h := newLoopHarness(t)
	h.roundTrip(t) // warm the shared buffers
	var resp protocol.Response
	if err := protocol.ParseResponse(h.reply[protocol.HeaderSize:protocol.HeaderSize+protocol.LittleEndian.Len(h.reply)], &resp); err != nil || string(resp.Result) != `"ireader 0"` {
		t.Fatalf("answer %q: %v", resp.Result, err)
	}
	if allocs := testing.AllocsPerRun(1000, func() { h.roundTrip(t) }); allocs != 0 {
		t.Fatalf("inline ping allocated %v times per request", allocs)
	}
}

// An Async call completed on the loop reuses its conn's answer queue and its
// answer buffer: answering it allocates nothing once the loop is warm.
func TestAsyncCallDoesNotAllocate(t *testing.T) {
	h := newLoopHarness(t)
	h.w.reg.RegisterAsync("echo", func(rpc.Loop) rpc.AsyncHandler {
		return func(_ rpc.Loop, calls []*rpc.AsyncCall) {
			for _, c := range calls {
				c.Reply.SetRaw(c.Params)
				c.Done()
			}
		}
	})
	h.req = protocol.AppendRequest(nil, protocol.LittleEndian, "echo", []byte(`"ireader 0"`))
	roundTrip := func() {
		if _, err := unix.Write(h.peer, h.req); err != nil {
			t.Fatal(err)
		}
		h.w.handleConn(h.c, readEvents)
		h.w.startAsync()
		n, err := unix.Read(h.peer, h.reply)
		if err != nil || n < protocol.HeaderSize {
			t.Fatalf("read answer: %d bytes, %v", n, err)
		}
	}
	roundTrip() // open the method on this loop and warm the buffers
	var resp protocol.Response
	if err := protocol.ParseResponse(h.reply[protocol.HeaderSize:protocol.HeaderSize+protocol.LittleEndian.Len(h.reply)], &resp); err != nil || string(resp.Result) != `"ireader 0"` {
		t.Fatalf("answer %q: %v", resp.Result, err)
	}
	if allocs := testing.AllocsPerRun(1000, roundTrip); allocs != 0 {
		t.Fatalf("an async call allocated %v times per request", allocs)
	}
}

func BenchmarkDispatchPing(b *testing.B) {
	h := newLoopHarness(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(h.req)))
	for b.Loop() {
		h.roundTrip(b)
	}
}

// BenchmarkProcessPipelined measures frame processing alone: 64 pipelined pings
// decoded, dispatched and encoded per iteration, without syscalls.
func BenchmarkProcessPipelined(b *testing.B) {
	h := newLoopHarness(b)
	var batch []byte
	for range 64 {
		batch = append(batch, h.req...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		h.w.outFor(h.c)
		if rest := h.w.assemble(h.c, batch); len(rest) != 0 {
			b.Fatal("frames left over")
		}
		h.w.out = h.w.out[:0]
	}
}

func TestConnStaysSmall(t *testing.T) {
	if size := unsafe.Sizeof(conn{}); size > 96 {
		t.Fatalf("conn is %d bytes; idle conns should cost at most 96", size)
	}
}
