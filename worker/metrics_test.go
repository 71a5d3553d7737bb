//go:build linux

package worker

import (
	"testing"

	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
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
