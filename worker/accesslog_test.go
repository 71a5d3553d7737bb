//go:build linux

package worker

import (
	"testing"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/protocol"
)

// recordedAccess is what a test access log keeps of a record.
type recordedAccess struct {
	method        string
	parsed        bool
	code          int
	in, out       int
	durationValid bool
}

// testAccessLog keeps every record, or drops every one when full.
type testAccessLog struct {
	got  []recordedAccess
	full bool
}

func (l *testAccessLog) Log(r *AccessRecord) bool {
	if l.full {
		return false
	}
	l.got = append(l.got, recordedAccess{method: string(r.Method), parsed: r.Method != nil, code: r.Code,
		in: r.BytesIn, out: r.BytesOut, durationValid: r.Duration >= 0 && !r.Time.IsZero()})
	return true
}

func TestAccessLogRecordsEachAnswer(t *testing.T) {
	h := newLoopHarness(t)
	log := &testAccessLog{}
	h.w.cfg.AccessLog = log
	h.roundTrip(t)
	pingOut := protocol.HeaderSize + int(protocol.LittleEndian.Len(h.reply))
	h.req = protocol.AppendRequest(nil, protocol.LittleEndian, "nosuch", []byte(`{"secret":1}`))
	h.roundTrip(t)
	nosuchOut := protocol.HeaderSize + int(protocol.LittleEndian.Len(h.reply))
	h.req = make([]byte, protocol.HeaderSize, protocol.HeaderSize+3)
	protocol.LittleEndian.PutLen(h.req, 3)
	h.req = append(h.req, "{x}"...)
	h.roundTrip(t)
	want := []recordedAccess{
		{method: "ping", parsed: true, code: metrics.CodeOK, in: len(protocol.AppendRequest(nil, protocol.LittleEndian, "ping", []byte(`"ireader 0"`))), out: pingOut},
		{method: "nosuch", parsed: true, code: metrics.CodeIndex(protocol.CodeUnknownMethod),
			in: len(protocol.AppendRequest(nil, protocol.LittleEndian, "nosuch", []byte(`{"secret":1}`))), out: nosuchOut},
		{code: metrics.CodeIndex(protocol.CodeBadRequest), in: protocol.HeaderSize + 3},
	}
	if len(log.got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(log.got), len(want), log.got)
	}
	for i, w := range want {
		g := log.got[i]
		if i == 2 {
			w.out = g.out // the bad request's answer size is checked below
		}
		w.durationValid = true
		if g != w {
			t.Errorf("record %d: got %+v, want %+v", i, g, w)
		}
	}
	if log.got[2].out <= protocol.HeaderSize {
		t.Errorf("bad request's answer counted %d bytes", log.got[2].out)
	}
}

func TestAccessLogDropsCounted(t *testing.T) {
	h := newLoopHarness(t)
	r := withRecorder(t, h)
	h.w.cfg.AccessLog = &testAccessLog{full: true}
	for range 3 {
		h.roundTrip(t)
	}
	h.w.publishMetrics()
	if got := r.Snapshot().Slots[0].Scalars[metrics.AccessDropped]; got != 3 {
		t.Fatalf("dropped records counted %d, want 3", got)
	}
}

// nopAccessLog keeps nothing: the loop's own cost of the access log.
type nopAccessLog struct{}

func (nopAccessLog) Log(*AccessRecord) bool { return true }

func TestInlinePingWithAccessLogDoesNotAllocate(t *testing.T) {
	h := newLoopHarness(t)
	h.w.cfg.AccessLog = nopAccessLog{}
	h.roundTrip(t)
	if allocs := testing.AllocsPerRun(1000, func() { h.roundTrip(t) }); allocs != 0 {
		t.Fatalf("inline ping with an access log allocated %v times per request", allocs)
	}
}

func BenchmarkDispatchPingAccessLog(b *testing.B) {
	h := newLoopHarness(b)
	h.w.cfg.AccessLog = nopAccessLog{}
	b.ReportAllocs()
	for b.Loop() {
		h.roundTrip(b)
	}
}
