//go:build linux

package worker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// withRecorder gives h's worker a block of a fresh region.
func withRecorder(tb testing.TB, h *loopHarness) *metrics.Region {
	tb.Helper()
	methods := []string{"ping"}
	r, err := metrics.Format(make([]byte, metrics.Size(methods, 1, 1)), methods, 1, 1)
	if err != nil {
		tb.Fatal(err)
	}
	r.Claim(0, 0, 1)
	if h.w.cfg.Metrics, err = r.Recorder(0); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestInlinePingCountedWithoutAllocating(t *testing.T) {
	h := newLoopHarness(t)
	r := withRecorder(t, h)
	h.roundTrip(t)
	if allocs := testing.AllocsPerRun(1000, func() {
		h.roundTrip(t)
		h.w.publishMetrics()
	}); allocs != 0 {
		t.Fatalf("inline ping with metrics allocated %v times per request", allocs)
	}
	st := r.Snapshot().Slots[0]
	if got := st.Rows[0].Codes[metrics.CodeOK]; got != 1002 {
		t.Fatalf("ping ok counted %d, want 1002", got)
	}
	if want := 1002 * uint64(len(h.req)); st.Scalars[metrics.BytesRead] != want || st.Scalars[metrics.BytesWritten] == 0 {
		t.Fatalf("bytes read %d (want %d), written %d", st.Scalars[metrics.BytesRead], want, st.Scalars[metrics.BytesWritten])
	}
}

func BenchmarkDispatchPingMetrics(b *testing.B) {
	h := newLoopHarness(b)
	withRecorder(b, h)
	b.ReportAllocs()
	for b.Loop() {
		h.roundTrip(b)
		h.w.publishMetrics()
	}
}

// Batch calls count under their own method and code, with a duration, and
// leave nothing in flight once answered.
func TestBatchCallsCounted(t *testing.T) {
	methods := []string{"echo", "ping"}
	r, err := metrics.Format(make([]byte, metrics.Size(methods, 1, 1)), methods, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Claim(0, 0, 1)
	rec, err := r.Recorder(0)
	if err != nil {
		t.Fatal(err)
	}
	p, c, _ := batchWorker(t, Config{Metrics: rec})
	c.write(frames([2]string{"ping", "1"}, [2]string{"echo", `"a"`}, [2]string{"echo", `"bad"`}))
	p.next(t)
	p.release <- struct{}{}
	expectAnswers(t, c, `pong 1`, `echo "a"`, `error bad_request`)
	echo, ping := rec.Row([]byte("echo")), rec.Row([]byte("ping"))
	var st metrics.SlotStats
	waitfor.Until(t, waitLimit, "the batch's answers counted", func() bool {
		st = r.Snapshot().Slots[0]
		return st.Rows[echo].Requests() == 2 && st.Scalars[metrics.InFlight] == 0
	})
	row := st.Rows[echo]
	if row.Codes[metrics.CodeOK] != 1 || row.Codes[metrics.CodeIndex(protocol.CodeBadRequest)] != 1 {
		t.Fatalf("echo codes %v, want one ok and one bad_request", row.Codes)
	}
	var inBuckets uint64
	for _, n := range row.Buckets {
		inBuckets += n
	}
	if inBuckets != 2 || row.SumNanos > uint64(waitLimit) {
		t.Fatalf("echo durations: %d in buckets, sum %dns; want 2 calls of at most %v", inBuckets, row.SumNanos, waitLimit)
	}
	if st.Rows[ping].Codes[metrics.CodeOK] != 1 {
		t.Fatalf("ping codes %v, want one ok", st.Rows[ping].Codes)
	}
}

// newRecorder gives a worker the only block of a fresh region.
func newRecorder(tb testing.TB) (*metrics.Region, *metrics.Recorder) {
	tb.Helper()
	methods := []string{"ping"}
	r, err := metrics.Format(make([]byte, metrics.Size(methods, 1, 1)), methods, 1, 1)
	if err != nil {
		tb.Fatal(err)
	}
	r.Claim(0, 0, 1)
	rec, err := r.Recorder(0)
	if err != nil {
		tb.Fatal(err)
	}
	return r, rec
}

// stopCounted stops s and returns its slot's counts once Serve returned.
func stopCounted(t *testing.T, s *server, r *metrics.Region) metrics.SlotStats {
	t.Helper()
	s.w.Shutdown()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return r.Snapshot().Slots[0]
}

// Each connection counts once, under the reason its close was decided for.
func TestCloseReasonsCounted(t *testing.T) {
	const short = 100 * time.Millisecond
	tests := []struct {
		name string
		cfg  Config
		run  func(*testing.T, *server)
		want int
	}{
		{name: "client", run: func(t *testing.T, s *server) {
			c := dial(t, s.addr)
			c.expectPing()
			c.conn.Close()
		}, want: metrics.CloseClient},
		{name: "idle", cfg: Config{IdleTimeout: short}, run: func(t *testing.T, s *server) {
			dial(t, s.addr).expectPing()
		}, want: metrics.CloseIdle},
		{name: "idle after hello", cfg: Config{IdleTimeout: short}, run: func(t *testing.T, s *server) {
			c := dial(t, s.addr)
			c.call(helloMethod, "")
			if got := c.answersUntilEOF(); !slices.Equal(got, []string{`rpcd.goodbye {"reason":"idle"}`}) {
				t.Fatalf("answers %q", got)
			}
			c.conn.Close()
		}, want: metrics.CloseIdle},
		{name: "read timeout", cfg: Config{ReadTimeout: short}, run: func(t *testing.T, s *server) {
			dial(t, s.addr).write(request("ping", `"x"`)[:protocol.HeaderSize+2])
		}, want: metrics.CloseReadTimeout},
		{name: "write timeout", cfg: Config{MaxPending: 64 << 20, WriteTimeout: 300 * time.Millisecond},
			run: func(t *testing.T, s *server) {
				var batch []byte
				for i := range 400 { // more answers than the socket buffers take
					batch = append(batch, request("big", fmt.Sprintf("[%d,%d]", i, 64<<10))...)
				}
				dial(t, s.addr).write(batch)
			}, want: metrics.CloseWriteTimeout},
		{name: "budget", cfg: Config{MaxBuffer: 1 << 20, MaxFrame: 4 << 20}, run: func(t *testing.T, s *server) {
			dial(t, s.addr).write(halfFrame(4<<20, 1200<<10))
		}, want: metrics.CloseBudget},
		{name: "frame error", run: func(t *testing.T, s *server) {
			c := dial(t, s.addr)
			c.write(rawFrame(""))
			c.answersUntilEOF()
			c.conn.Close()
		}, want: metrics.CloseFrameError},
		{name: "drain", run: func(t *testing.T, s *server) {
			c := dial(t, s.addr)
			c.expectPing()
			s.w.Shutdown()
			c.answersUntilEOF()
			c.conn.Close()
		}, want: metrics.CloseDrain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rec := newRecorder(t)
			tt.cfg.Metrics = rec
			s := startWorker(t, tt.cfg)
			tt.run(t, s)
			waitfor.Until(t, waitLimit, "the close counted", func() bool {
				return r.Snapshot().Slots[0].Scalars[metrics.Closed(tt.want)] > 0
			})
			st := stopCounted(t, s, r)
			for reason, name := range metrics.CloseReasons {
				want := uint64(0)
				if reason == tt.want {
					want = 1
				}
				if got := st.Scalars[metrics.Closed(reason)]; got != want {
					t.Errorf("closed for %s: %d, want %d", name, got, want)
				}
			}
			if st.Scalars[metrics.Accepted] != 1 || st.Scalars[metrics.OpenConns] != 0 {
				t.Errorf("accepted %d, open %d; want 1 and 0", st.Scalars[metrics.Accepted], st.Scalars[metrics.OpenConns])
			}
		})
	}
}

// The closes of a drain's last loop turn are counted too: every accepted
// connection is counted closed once Serve returns.
func TestDrainClosesCounted(t *testing.T) {
	r, rec := newRecorder(t)
	s := startWorker(t, Config{Metrics: rec})
	const conns = 4
	for range conns { // raw connections that never send, nor close
		dial(t, s.addr)
	}
	waitfor.Until(t, waitLimit, "the connections accepted", func() bool { return s.w.Stats().Accepted == conns })
	st := stopCounted(t, s, r)
	var closed uint64
	for reason := range metrics.CloseReasons {
		closed += st.Scalars[metrics.Closed(reason)]
	}
	if st.Scalars[metrics.Accepted] != conns || closed != conns || st.Scalars[metrics.OpenConns] != 0 {
		t.Fatalf("accepted %d, closed %d, open %d; want %d, %d, 0",
			st.Scalars[metrics.Accepted], closed, st.Scalars[metrics.OpenConns], conns, conns)
	}
	if got := st.Scalars[metrics.Closed(metrics.CloseDrain)]; got != conns {
		t.Fatalf("closed by the drain %d, want %d", got, conns)
	}
}

// rpcd_pool_rejected_total counts the worker's own refusals of blocking
// calls, queue full or past the deadline, and not a handler answering
// with the same codes.
func TestPoolRejectionsCounted(t *testing.T) {
	release := make(chan struct{})
	reg := rpc.NewRegistry()
	reg.Register("stuck", rpc.Blocking, func(context.Context, []byte, *rpc.Reply) error {
		<-release
		return nil
	})
	reg.Register("busy", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error {
		return protocol.Errorf(protocol.CodeOverloaded, "my own")
	})
	reg.Register("late", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error {
		return protocol.Errorf(protocol.CodeTimeout, "my own")
	})
	r, rec := newRecorder(t)
	addr := ctxWorker(t, Config{Metrics: rec, PoolSize: 1, QueueSize: 1, HandlerTimeout: 200 * time.Millisecond}, reg)
	t.Cleanup(func() { close(release) })
	c := dial(t, addr)
	// One call runs, one waits in the queue, one finds it full; the two
	// taken pass their deadline.
	var batch []byte
	for _, m := range []string{"stuck", "stuck", "stuck", "busy", "late"} {
		batch = append(batch, request(m, "")...)
	}
	c.write(batch)
	want := []string{"timeout", "timeout", "overloaded", "overloaded", "timeout"}
	for i, code := range want {
		if e := c.errorAnswer(); e.Code != code {
			t.Fatalf("answer %d: %s, want %s", i, e.Code, code)
		}
	}
	var st metrics.SlotStats
	waitfor.Until(t, waitLimit, "the answers counted", func() bool {
		st = r.Snapshot().Slots[0]
		var n uint64
		for i := range st.Rows {
			n += st.Rows[i].Requests()
		}
		return n == uint64(len(want))
	})
	if st.Scalars[metrics.PoolOverloaded] != 1 || st.Scalars[metrics.PoolTimeouts] != 2 {
		t.Fatalf("pool rejections: %d overloaded (want 1), %d timeouts (want 2)",
			st.Scalars[metrics.PoolOverloaded], st.Scalars[metrics.PoolTimeouts])
	}
}
