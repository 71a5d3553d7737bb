//go:build linux

package worker

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/rpc"
)

// Classes are a quarter octave apart at most, and classBelow finds the class
// of every size between two classes.
func TestSpareClasses(t *testing.T) {
	if classSize(0) != minSpare || classSize(spareClasses-1) != maxSpare {
		t.Fatalf("classes span %d to %d; want %d to %d", classSize(0), classSize(spareClasses-1), minSpare, maxSpare)
	}
	for i := range spareClasses - 1 {
		lo, hi := classSize(i), classSize(i+1)
		if hi <= lo || hi > lo+lo/4 {
			t.Fatalf("class %d is %d bytes, class %d %d: want at most a quarter more", i, lo, i+1, hi)
		}
		for _, n := range []int{lo, lo + 1, (lo + hi) / 2, hi - 1} {
			if got := classBelow(n); got != i {
				t.Fatalf("classBelow(%d) = %d; want %d", n, got, i)
			}
		}
	}
}

// A buffer put back is handed out again for a size of its class, or for a
// somewhat smaller one, and not for one far smaller.
func TestSpareBuffersReused(t *testing.T) {
	tests := []struct {
		name       string
		put        int
		need, want int
		reused     bool
	}{
		{name: "same class", put: 640 << 10, need: 600 << 10, want: 700 << 10, reused: true},
		{name: "within reach", put: 640 << 10, need: 64 << 10, want: 80 << 10, reused: true},
		{name: "out of reach", put: 640 << 10, need: 40 << 10, want: 48 << 10},
		{name: "too small to keep", put: 16 << 10, need: 16 << 10, want: 16 << 10},
		{name: "class too small", put: 512 << 10, need: 600 << 10, want: 700 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s spareBuffers
			b := make([]byte, 10, tt.put)
			kept := s.put(b)
			if kept != (tt.put >= minSpare) || kept && s.bytes != tt.put {
				t.Fatalf("put kept %v, holding %d bytes", kept, s.bytes)
			}
			got := s.get(tt.need, tt.want)
			if len(got) != 0 || cap(got) < tt.need {
				t.Fatalf("got len %d cap %d for %d bytes", len(got), cap(got), tt.need)
			}
			if reused := &got[:1][0] == &b[0]; reused != tt.reused {
				t.Fatalf("reused %v; want %v", reused, tt.reused)
			}
			if tt.reused && s.bytes != 0 {
				t.Fatalf("holding %d bytes after handing out the only spare", s.bytes)
			}
		})
	}
}

// Spares are kept only within the budget's ceiling, and enforceBudget trims
// them to what the conns leave of it, the largest first.
func TestSpareBuffersBounded(t *testing.T) {
	w, err := New(Config{MaxBuffer: 1 << 20}, rpc.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ceiling := w.bufferCeiling()
	w.recycle(make([]byte, 0, 512<<10))
	w.recycle(make([]byte, 0, 512<<10)) // over the ceiling with the first
	w.recycle(make([]byte, 0, 256<<10))
	w.recycle(make([]byte, 0, 256<<10)) // over again
	if want := 768 << 10; w.spare.bytes != want || want > ceiling {
		t.Fatalf("kept %d bytes of spares under a ceiling of %d; want %d", w.spare.bytes, ceiling, want)
	}
	w.buffered = ceiling - 300<<10
	w.enforceBudget()
	if want := 256 << 10; w.spare.bytes != want {
		t.Fatalf("kept %d bytes of spares beside %d held; want %d", w.spare.bytes, w.buffered, want)
	}
	w.buffered = 0
	w.releaseMemory()
	if w.spare.bytes != 0 {
		t.Fatalf("kept %d bytes of spares with nothing held", w.spare.bytes)
	}
}

// The buffers a half frame went through, and the one it completed in, are
// taken by the next conn's half frame instead of new ones.
func TestCompletedFrameBufferReused(t *testing.T) {
	const size, sent = 512 << 10, 300 << 10
	h := newLoopHarness(t)
	h.pump(t, h.c, h.peer, halfFrame(size, sent))
	h.pump(t, h.c, h.peer, frameRest(size, sent))
	if h.c.in != nil || h.w.spare.bytes < sent {
		t.Fatalf("frame done: conn holds %d bytes, spares %d; want 0 and at least %d", len(h.c.in), h.w.spare.bytes, sent)
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	h.w.openConn(fds[0], nil)
	second := h.w.conns[fds[0]]
	msg := halfFrame(size, sent)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.pump(t, second, fds[1], msg)
	runtime.ReadMemStats(&after)
	if len(second.in) != len(msg) {
		t.Fatalf("second conn holds %d bytes; want %d", len(second.in), len(msg))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > sent/4 {
		t.Fatalf("the second half frame allocated %d bytes; want its buffers from the spares", n)
	}
}

// pump writes msg from peer, having the loop read c whenever the socket is
// full, until c has read all of it.
func (h *loopHarness) pump(t *testing.T, c *conn, peer int, msg []byte) {
	t.Helper()
	for range 1000 {
		if len(msg) > 0 {
			n, err := unix.Write(peer, msg)
			if err != nil && err != unix.EAGAIN {
				t.Fatalf("write: %v", err)
			}
			msg = msg[max(n, 0):]
		}
		h.w.handleConn(c, readEvents)
		pending, err := unix.IoctlGetInt(int(c.fd), unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) == 0 && pending == 0 {
			return
		}
	}
	t.Fatalf("%d bytes left unread", len(msg))
}
