//go:build linux

package worker

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/protocol"
)

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A client that asks for large answers and never reads them must pause the
// worker's reading from it, hold bounded memory, not slow other clients, and
// get every answer, in order, once it reads.
func TestBackpressurePausesReading(t *testing.T) {
	const (
		maxPending = 256 << 10
		requests   = 400
		answerSize = 64 << 10 // 25 MiB of answers: far more than the socket buffers take
	)
	s := startWorker(t, Config{MaxPending: maxPending})
	before := heapInUse()
	greedy := dial(t, s.addr)
	var batch []byte
	for i := range requests {
		batch = append(batch, request("big", fmt.Sprintf("[%d,%d]", i, answerSize))...)
	}
	greedy.write(batch)
	paused := s.waitStats(t, "reading to pause", func(st Stats) bool { return st.Paused == 1 })
	if paused.Requests >= requests {
		t.Fatalf("worker processed all %d requests without pausing", paused.Requests)
	}
	if grown := int64(heapInUse()) - int64(before); grown > 16*maxPending {
		t.Fatalf("heap grew by %d bytes while paused", grown)
	}
	dial(t, s.addr).expectPing()

	for i := range requests {
		out, result := greedy.answer()
		if want := fmt.Sprintf(`[%d,"`, i); out != "big" || !strings.HasPrefix(result, want) || len(result) != len(want)+answerSize+2 {
			t.Fatalf("answer %d: %s %.20s (%d bytes)", i, out, result, len(result))
		}
	}
	s.waitStats(t, "reading to resume", func(st Stats) bool { return st.Paused == 0 })
}

// An advertised length is not allocated before its bytes arrive, and a frame
// left half sent is dropped after ReadTimeout.
func TestHalfSentFrameNotAllocatedAndTimesOut(t *testing.T) {
	s := startWorker(t, Config{MaxFrame: 1 << 31, ReadTimeout: 200 * time.Millisecond})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c := dial(t, s.addr)
	header := make([]byte, protocol.HeaderSize)
	protocol.LittleEndian.PutLen(header, 1<<30)
	c.write(append(header, `{"in":"ping","params":"`...))
	c.expectClosed()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
		t.Fatalf("allocated %d bytes for a frame of which a few bytes arrived", grown)
	}
}

func TestReadTimeoutSparesWholeFrames(t *testing.T) {
	s := startWorker(t, Config{ReadTimeout: 200 * time.Millisecond})
	quiet := dial(t, s.addr)
	quiet.expectPing()
	tests := []struct {
		name string
		send []byte
	}{
		{name: "partial header", send: request("ping", "1")[:2]},
		{name: "partial body", send: request("ping", "1")[:9]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slow := dial(t, s.addr)
			slow.write(tt.send)
			slow.expectClosed()
		})
	}
	// quiet sat at a frame boundary for longer than the timeout that cut the others.
	quiet.expectPing()
}

func TestIdleTimeout(t *testing.T) {
	s := startWorker(t, Config{IdleTimeout: 200 * time.Millisecond})
	busy := dial(t, s.addr)
	busy.write(request("slow", `"busy"`))
	s.gates.waitStarted(t, "busy")
	idle := dial(t, s.addr)
	idle.expectPing()
	idle.expectEOF()
	// busy has been quiet longer than idle was, but a request is in flight.
	s.gates.open("busy")
	if got := describe(busy.answer()); got != `slow "busy"` {
		t.Fatalf("busy answer = %s", got)
	}
}

// Idle connections cost the worker a small struct each, not buffers.
func TestIdleConnsCostLittleHeap(t *testing.T) {
	const conns = 500
	s := startWorker(t, Config{})
	fds := make([]int, 0, conns)
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	before := heapInUse()
	for range conns {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: s.port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	s.waitStats(t, "every conn accepted", func(st Stats) bool { return st.Open == conns })
	perConn := (int64(heapInUse()) - int64(before)) / conns
	t.Logf("%d heap bytes per idle conn", perConn)
	if perConn > 500 {
		t.Fatalf("%d heap bytes per idle conn", perConn)
	}
}

// A client that stops reading is dropped once its answers have made no
// progress for WriteTimeout, so it cannot hold its memory, or a drain, for
// ever; other clients are served meanwhile.
func TestWriteTimeoutDropsStalledReader(t *testing.T) {
	s := startWorker(t, Config{MaxPending: 256 << 10, WriteTimeout: 300 * time.Millisecond})
	stalled := dial(t, s.addr)
	var batch []byte
	for i := range 100 {
		batch = append(batch, request("big", fmt.Sprintf("[%d,%d]", i, 64<<10))...)
	}
	stalled.write(batch)
	s.waitStats(t, "reading to pause", func(st Stats) bool { return st.Paused == 1 })
	dial(t, s.addr).expectPing()
	s.waitStats(t, "the stalled conn to be dropped", func(st Stats) bool { return st.Open == 1 && st.Paused == 0 })
}
