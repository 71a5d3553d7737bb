//go:build linux

package worker

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/protocol"
)

// halfFrame is the start of a ping frame whose body is size bytes long: its
// header and the first sent bytes of the body.
func halfFrame(size, sent int) []byte {
	b := make([]byte, protocol.HeaderSize, protocol.HeaderSize+sent)
	protocol.LittleEndian.PutLen(b, uint32(size))
	b = append(b, `{"in":"ping","params":"`...)
	return append(b, strings.Repeat("x", sent-len(b)+protocol.HeaderSize)...)
}

// frameRest completes a halfFrame(size, sent).
func frameRest(size, sent int) []byte {
	return append([]byte(strings.Repeat("x", size-sent-2)), `"}`...)
}

// At MaxConns open connections the worker stops accepting, leaving new ones
// queued, says so once per episode, and takes them once a connection closes.
func TestConnLimitStopsAndResumesAccepting(t *testing.T) {
	s := startWorker(t, Config{MaxConns: 2})
	a, b := dial(t, s.addr), dial(t, s.addr)
	a.expectPing()
	b.expectPing()
	queued := dial(t, s.addr) // completes in the listener's backlog
	queued.write(request("ping", `"queued"`))
	s.waitLog(t, "connection limit reached; accepts paused")
	if st := s.w.Stats(); st.Accepted != 2 {
		t.Fatalf("accepted %d connections at a limit of 2", st.Accepted)
	}
	a.conn.Close()
	if got := describe(queued.answer()); got != `pong "queued"` {
		t.Fatalf("queued conn answered %s", got)
	}
	b.expectPing()
	// Taking queued reached the limit again: two episodes, one resumption.
	reached := s.logs.FilterMessage("connection limit reached; accepts paused").Len()
	resumed := s.logs.FilterMessage("below the connection limit; accepting again").Len()
	if reached != 2 || resumed != 1 {
		t.Fatalf("limit reached %d times and resumed %d times; want 2 and 1", reached, resumed)
	}
}

// A worker held at its connection limit by steady load, each close letting
// a queued connection in, logs one episode rather than a pair of lines per
// close.
func TestConnLimitLogsOncePerEpisode(t *testing.T) {
	const limit, queued = 10, 5
	s := startWorker(t, Config{MaxConns: limit})
	var open []*client
	for range limit {
		c := dial(t, s.addr)
		c.expectPing()
		open = append(open, c)
	}
	var waiting []*client
	for i := range queued {
		c := dial(t, s.addr)
		c.write(request("ping", fmt.Sprintf(`"queued %d"`, i)))
		waiting = append(waiting, c)
	}
	s.waitLog(t, "connection limit reached; accepts paused")
	for i, c := range waiting {
		open[i].conn.Close()
		if got, want := describe(c.answer()), fmt.Sprintf(`pong "queued %d"`, i); got != want {
			t.Fatalf("queued conn answered %s, want %s", got, want)
		}
	}
	reached := s.logs.FilterMessage("connection limit reached; accepts paused").Len()
	resumed := s.logs.FilterMessage("below the connection limit; accepting again").Len()
	if reached > 1 || resumed > 1 {
		t.Fatalf("limit reached logged %d times and resumed %d times; want at most once each", reached, resumed)
	}
}

// A worker retiring at its connection limit takes the connections queued on
// its listener and answers them, instead of resetting them with the socket.
func TestRetireAtConnLimitTakesQueue(t *testing.T) {
	s := startWorker(t, Config{MaxConns: 2})
	a, b := dial(t, s.addr), dial(t, s.addr)
	a.expectPing()
	b.expectPing()
	queued := dial(t, s.addr)
	queued.write(request("ping", `"queued"`))
	s.waitLog(t, "connection limit reached; accepts paused")
	s.w.Retire()
	if got := queued.answersUntilEOF(); len(got) != 1 || got[0] != `pong "queued"` {
		t.Fatalf("queued conn answered %q; want one pong", got)
	}
	for _, c := range []*client{a, b, queued} {
		c.conn.Close() // ends the lingering close
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A half-received frame's buffer is sized by the bytes that arrived, not by
// its advertised length, and is released once the frame completes.
func TestHalfFrameBufferSizedByArrival(t *testing.T) {
	const size, sent = 1 << 20, 600 << 10
	s := startWorker(t, Config{MaxFrame: size})
	c := dial(t, s.addr)
	c.write(halfFrame(size, sent))
	st := s.waitStats(t, "the half frame to arrive", func(st Stats) bool { return st.Buffered >= sent })
	if limit := int64(sent + sent/4 + readBufferSize); st.Buffered > limit {
		t.Fatalf("holding %d bytes for %d of a %d-byte frame; want at most %d", st.Buffered, sent, size, limit)
	}
	c.write(frameRest(size, sent))
	if out, result := c.answer(); out != "pong" || len(result) != size-len(`{"in":"ping","params":}`) {
		t.Fatalf("answer %s, %d bytes", out, len(result))
	}
	s.waitStats(t, "the frame's buffer to be released", func(st Stats) bool { return st.Buffered == 0 })
}

// Near the budget, conns at a frame boundary are not read while a conn with
// a half frame may still complete it; past the budget, the biggest holder is
// dropped with a reset and a reason, and reading resumes.
func TestBudgetPausesThenDropsBiggest(t *testing.T) {
	const budget, frame = 1 << 20, 4 << 20
	s := startWorker(t, Config{MaxBuffer: budget, MaxFrame: frame})
	partial := dial(t, s.addr)
	ping := request("ping", `"partial"`)
	partial.write(ping[:2])
	waiting := dial(t, s.addr)
	waiting.expectPing()

	hog := dial(t, s.addr)
	hog.write(halfFrame(frame, 800<<10))
	s.waitStats(t, "the budget's pressure", func(st Stats) bool { return st.BudgetPaused })
	before := s.w.Stats().Requests
	waiting.write(request("ping", `"waiting"`))
	partial.write(ping[2:])
	if got := describe(partial.answer()); got != `pong "partial"` {
		t.Fatalf("partial conn answered %s", got)
	}
	if got := s.w.Stats().Requests - before; got != 1 {
		t.Fatalf("read %d requests under pressure; want only the half-received one", got)
	}

	hog.write([]byte(strings.Repeat("x", 400<<10)))
	s.waitStats(t, "the hog to be dropped", func(st Stats) bool { return st.Dropped == 1 })
	if _, err := io.Copy(io.Discard, hog.conn); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dropped client read %v, want a reset", err)
	}
	if got := describe(waiting.answer()); got != `pong "waiting"` {
		t.Fatalf("waiting conn answered %s", got)
	}
	s.waitStats(t, "the pressure to end", func(st Stats) bool { return !st.BudgetPaused })
	drop := s.logs.FilterMessage("connection dropped").All()
	if len(drop) != 1 || drop[0].Level != zapcore.InfoLevel || drop[0].ContextMap()["reason"] != "memory budget" ||
		drop[0].ContextMap()["peer"] != hog.conn.LocalAddr().String() {
		t.Fatalf("drop logged as %+v", drop)
	}
}

// Clients that stop reading their answers, holding enough of the budget to
// keep its pressure on, do not stall the worker: the biggest of them are
// dropped and a new client is answered.
func TestNonReadersDoNotStallWorker(t *testing.T) {
	const budget = 8 << 20
	const pressure = "memory budget under pressure; reading paused at frame boundaries"
	s := startWorker(t, Config{MaxBuffer: budget, MaxPending: 1 << 20})
	pressed := func() bool { return s.logs.FilterMessage(pressure).Len() > 0 || s.w.Stats().BudgetPaused }
	// Each non-reader sends requests one by one until its unsent answers
	// pause it, so that it holds about MaxPending whatever the kernel took.
	for i := range 20 {
		if pressed() {
			break
		}
		c := dial(t, s.addr)
		for j := 0; j < 200 && s.w.Stats().Paused == int64(i) && !pressed(); j++ {
			before := s.w.Stats().Answered
			c.write(request("big", fmt.Sprintf("[%d,%d]", j, 64<<10)))
			s.waitStats(t, "an answer or a pause", func(st Stats) bool {
				return st.Answered > before || st.Paused > int64(i) || st.BudgetPaused
			})
		}
	}
	s.waitLog(t, pressure)
	if held := s.logs.FilterMessage(pressure).All()[0].ContextMap()["held"].(int64); held*4 < budget*3 || held > budget {
		t.Fatalf("pressure with %d bytes held; want between 3/4 of %d and all of it", held, budget)
	}
	dial(t, s.addr).expectPing()
	if st := s.w.Stats(); st.Dropped == 0 || st.BudgetPaused {
		t.Fatalf("a new client was answered with %d dropped and pressure %v; want drops and no pressure", st.Dropped, st.BudgetPaused)
	}
}

// A client dropped for not reading its answers gets a reset, not an end of
// stream after them, and the drop is logged at info with the peer.
func TestWriteTimeoutResetsStalledReader(t *testing.T) {
	s := startWorker(t, Config{MaxPending: 64 << 20, WriteTimeout: 300 * time.Millisecond})
	stalled := dial(t, s.addr)
	var batch []byte
	for i := range 400 { // 25 MiB of answers: more than the socket buffers take
		batch = append(batch, request("big", fmt.Sprintf("[%d,%d]", i, 64<<10))...)
	}
	stalled.write(batch)
	s.waitStats(t, "every request read", func(st Stats) bool { return st.Requests == 400 })
	s.waitStats(t, "the stalled conn to be dropped", func(st Stats) bool { return st.Open == 0 })
	if err := stalled.conn.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, stalled.conn); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("stalled client read %d bytes then %v, want a reset", n, err)
	}
	s.waitLog(t, "connection dropped")
	e := s.logs.FilterMessage("connection dropped").All()[0]
	if e.Level != zapcore.InfoLevel || e.ContextMap()["reason"] != writeTimeout ||
		e.ContextMap()["peer"] != stalled.conn.LocalAddr().String() {
		t.Fatalf("drop logged as %v %v", e.Level, e.ContextMap())
	}
}

// Drops are logged at most once a second per reason, each line counting the
// drops it stands for.
func TestDropLogRateLimited(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	d := newDropLog(zap.New(core))
	at := func(d time.Duration) int64 { return int64(10*time.Second + d) }
	d.note(at(0), writeTimeout, "127.0.0.1:1", 10)
	for i := range 3 {
		d.note(at(time.Duration(i+1)*100*time.Millisecond), writeTimeout, "127.0.0.1:2", 10)
	}
	d.note(at(200*time.Millisecond), "memory budget", "127.0.0.1:3", 10)
	d.flush(at(500 * time.Millisecond))
	d.flush(at(time.Second))
	d.note(at(1100*time.Millisecond), writeTimeout, "127.0.0.1:4", 10)
	d.note(at(2100*time.Millisecond), writeTimeout, "127.0.0.1:5", 10)

	var got []string
	for _, e := range logs.All() {
		f := e.ContextMap()
		got = append(got, fmt.Sprintf("%s %s %v %v", e.Message, f["reason"], f["peer"], f["suppressed"]))
	}
	want := []string{
		"connection dropped write timeout 127.0.0.1:1 0",
		"connection dropped memory budget 127.0.0.1:3 0",
		"connections dropped write timeout <nil> 3",
		"connection dropped write timeout 127.0.0.1:5 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An answer buffer the socket took part of stays allocated whole, and the
// budget counts all of it until every answer is out.
func TestBudgetCountsPartlyWrittenAnswers(t *testing.T) {
	h := newLoopHarness(t)
	h.w.send(h.c, make([]byte, 4<<20)) // more than the socket pair buffers
	h.w.account(h.c)
	size, pending := cap(h.c.out), h.w.pendingBytes(h.c)
	if pending == 0 || h.c.counted != uint32(size) {
		t.Fatalf("%d bytes unsent, %d counted; want some unsent and %d counted", pending, h.c.counted, size)
	}
	for range 2 {
		if _, err := unix.Read(h.peer, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		h.w.handleConn(h.c, writeEvents)
		if left := h.w.pendingBytes(h.c); left >= pending || left == 0 {
			t.Fatalf("%d bytes unsent after the peer read, %d before", left, pending)
		}
		if h.c.counted != uint32(size) {
			t.Fatalf("counted %d bytes of a %d-byte answer buffer still held", h.c.counted, size)
		}
		pending = h.w.pendingBytes(h.c)
	}
}
