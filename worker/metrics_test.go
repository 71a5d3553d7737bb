//go:build linux

package worker

import (
	"testing"

	"github.com/rpcd/rpcd/metrics"
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
