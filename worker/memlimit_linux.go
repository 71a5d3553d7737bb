package worker

import (
	"math"
	"runtime/debug"
	rtmetrics "runtime/metrics"
)

// heapHeadroom is what a worker's process holds beyond its memory budget
// under a hostile burst: the runtime, the loop's shared buffers and the
// conns' own structs. An idle worker holds about 1.2 MiB of anonymous
// memory (/proc/PID/smaps_rollup).
const heapHeadroom = 2 << 20

// memoryLimit keeps the process's soft memory limit (Config.ManageMemoryLimit)
// at the budget plus heapHeadroom plus the heap the program keeps live apart
// from the conns' buffers: what handlers and extensions hold. Under it the
// garbage collector runs before buffer garbage takes the process more than
// the budget past that, yet a program holding more than the budget is not
// collected continuously, as it would be under a fixed limit.
//
// The live heap is the one the last collection marked, which held the
// buffers of that moment; the buffers counted are the most held since the
// limit was last set, so the limit errs low. It is set again after each
// collection, at the sweep.
type memoryLimit struct {
	samples  [2]rtmetrics.Sample // the live heap and the collections so far
	cycles   uint64              // collections when the limit was last set
	heldPeak int                 // most bytes held in buffers and spares since then
	limit    int64
}

const (
	liveHeapMetric = "/gc/heap/live:bytes"
	gcCyclesMetric = "/gc/cycles/total:gc-cycles"
)

// startMemoryLimit sets the limit for a program that keeps nothing else live.
func (w *Worker) startMemoryLimit() {
	m := &w.memLimit
	m.samples[0].Name, m.samples[1].Name = liveHeapMetric, gcCyclesMetric
	rtmetrics.Read(m.samples[:])
	m.cycles = m.samples[1].Value.Uint64()
	m.limit = int64(w.cfg.MaxBuffer) + heapHeadroom
	debug.SetMemoryLimit(m.limit)
}

// noteHeld records what the buffers and spares hold now; account calls it.
func (m *memoryLimit) noteHeld(held int) { m.heldPeak = max(m.heldPeak, held) }

// updateMemoryLimit runs at each sweep: after a collection it sets the limit
// from the live heap that collection found.
func (w *Worker) updateMemoryLimit() {
	if !w.cfg.ManageMemoryLimit {
		return
	}
	m := &w.memLimit
	rtmetrics.Read(m.samples[:])
	cycles := m.samples[1].Value.Uint64()
	if cycles == m.cycles {
		return
	}
	live := m.samples[0].Value.Uint64()
	own := int64(min(live, math.MaxInt64/2)) - int64(m.heldPeak)
	limit := int64(w.cfg.MaxBuffer) + heapHeadroom + max(own, 0)
	m.cycles, m.heldPeak = cycles, w.buffered+w.spare.bytes
	if limit != m.limit {
		m.limit = limit
		debug.SetMemoryLimit(limit)
	}
}
