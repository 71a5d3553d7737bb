package worker

import (
	"cmp"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The memory budget (Config.MaxBuffer) bounds the memory a worker spends on
// its connections in user space: the capacity of half-received frames'
// buffers and of answers not yet taken by the kernel, spare buffers kept for
// reuse (see spare.go), and the garbage they leave, for which 1/collectorShare
// of the budget is set aside. Each conn's share is recounted whenever it
// settles. At pressureShare of the budget, conns at a frame boundary stop
// being read (backpressure; a conn with a half frame may still complete it);
// below resumeShare reading resumes. Pausing frees nothing that clients not
// reading their answers hold, so under pressure each sweep drops the
// biggest holders of unsent answers until those hold at most resumeShare
// (see shedUnsent). Past the ceiling (the budget less the collector's share)
// the rest of a batch of events reads nothing, spares are let go, and the
// conns holding the most are dropped with a reset until the total is back
// within it.
const (
	pressureNum, pressureDen = 3, 4 // pressure starts at 3/4 of the budget
	resumeNum, resumeDen     = 1, 2 // and ends at 1/2 of it
	collectorShare           = 16   // 1/16 of the budget is left for garbage

	// After the held total falls by releaseDrop from its peak, the worker
	// hands freed heap back to the OS, at most once per releaseEvery: Go's
	// runtime would return it only minutes later.
	releaseDrop  = 16 << 20
	releaseEvery = 2 * time.Second
)

// held is what c holds in user space: its half-received or held-back input,
// its unsent answers (the whole buffer, written part included: see
// conn.wrote) and those waiting behind pooled requests. It saturates
// at 4 GiB, so that it fits the padding of conn.
func (c *conn) held() uint32 {
	n := cap(c.in) + cap(c.out)
	if c.order != nil {
		n += c.order.queued
	}
	return uint32(min(n, math.MaxUint32))
}

// account recounts c's share of the budget, and starts the pressure once the
// total reaches its threshold, so the rest of a batch of events reads no more.
func (w *Worker) account(c *conn) {
	if c.flags&closed != 0 {
		return
	}
	h := c.held()
	w.buffered += int(h) - int(c.counted)
	c.counted = h
	w.stats.buffered.Store(int64(w.buffered))
	w.peak = max(w.peak, w.buffered)
	w.memLimit.noteHeld(w.buffered + w.spare.bytes)
	if !w.pressed && w.buffered*pressureDen >= w.cfg.MaxBuffer*pressureNum {
		w.pressed = true
	}
}

// forget removes a closing conn's share from the budget.
func (w *Worker) forget(c *conn) {
	w.buffered -= int(c.counted)
	c.counted = 0
	w.stats.buffered.Store(int64(w.buffered))
}

// enforceBudget runs after each batch of events: it drops the biggest holders
// while the total exceeds the budget, ends the pressure once the total is low
// again, and brings every conn's read interest in line with the pressure.
func (w *Worker) enforceBudget() {
	for w.buffered > w.bufferCeiling() {
		c := w.biggestHolder()
		if c == nil {
			break
		}
		w.dropConn(c, memoryBudget)
		w.stats.dropped.Add(1)
	}
	w.spare.trim(max(w.bufferCeiling()-w.buffered, 0))
	if w.pressed && w.buffered*resumeDen <= w.cfg.MaxBuffer*resumeNum {
		w.pressed = false
	}
	if w.pressed == w.budgetPaused {
		return
	}
	w.budgetPaused = w.pressed
	w.stats.budgetPaused.Store(w.pressed)
	if w.pressed {
		w.log.Info("memory budget under pressure; reading paused at frame boundaries",
			zap.Int("held", w.buffered), zap.Int("max_buffer", w.cfg.MaxBuffer))
	} else {
		w.log.Info("memory budget pressure over; reading resumed", zap.Int("held", w.buffered))
	}
	for _, c := range w.conns {
		if c != nil && c.flags&closed == 0 {
			w.updateInterest(c)
		}
	}
}

// shedUnsent runs at each sweep. Under pressure, answers that clients do not
// take stay held however long reading is paused, so if they alone hold more
// than the pressure's end the pressure would last until they time out, and
// every conn at a frame boundary would wait with it. The conns holding the
// most unsent answers are then dropped until the rest hold no more than
// that, and the pressure is reassessed at once.
func (w *Worker) shedUnsent() {
	if !w.pressed {
		return
	}
	total := 0
	w.shed = w.shed[:0]
	for _, c := range w.conns {
		if c != nil && cap(c.out) > 0 {
			total += cap(c.out)
			w.shed = append(w.shed, c)
		}
	}
	defer clear(w.shed)
	if total*resumeDen <= w.cfg.MaxBuffer*resumeNum {
		return
	}
	slices.SortFunc(w.shed, func(a, b *conn) int { return cmp.Compare(cap(b.out), cap(a.out)) })
	for _, c := range w.shed {
		if total*resumeDen <= w.cfg.MaxBuffer*resumeNum {
			break
		}
		total -= cap(c.out)
		w.dropConn(c, memoryBudget)
		w.stats.dropped.Add(1)
	}
	w.enforceBudget()
}

// recycle keeps b, a buffer no conn uses any more, as a spare if the spares
// stay within the budget; enforceBudget trims them to what the conns leave.
func (w *Worker) recycle(b []byte) {
	if w.spare.bytes+cap(b) <= w.bufferCeiling() {
		w.spare.put(b)
	}
}

// bufferCeiling is what conns and spares may hold together: the budget less
// the collector's share.
func (w *Worker) bufferCeiling() int {
	return w.cfg.MaxBuffer - w.cfg.MaxBuffer/collectorShare
}

// biggestHolder returns the conn holding the most bytes, nil if none holds any.
func (w *Worker) biggestHolder() *conn {
	var big *conn
	for _, c := range w.conns {
		if c != nil && c.counted > 0 && (big == nil || c.counted > big.counted) {
			big = c
		}
	}
	return big
}

// releaseMemory runs at each sweep. With nothing held it lets the spares go;
// after the held total fell far from its peak it lets them go and returns
// freed heap to the OS, rate-limited, forcing a garbage collection.
func (w *Worker) releaseMemory() {
	if w.buffered == 0 {
		w.spare.trim(0)
	}
	if w.peak-w.buffered < releaseDrop || w.lastRelease != 0 && w.since(w.lastRelease) < releaseEvery {
		return
	}
	w.spare.trim(0)
	clear(w.freeFrames)
	w.freeFrames = w.freeFrames[:0]
	w.peak = w.buffered
	w.lastRelease = w.now
	debug.FreeOSMemory()
}

// memoryBudget is the reason a conn is dropped past the budget.
const memoryBudget = "memory budget"

// dropConn closes c with a reset (SO_LINGER 0), so the kernel frees its
// queues at once instead of keeping unsent answers for a client that does not
// read them, and logs the drop at info, rate-limited per reason.
func (w *Worker) dropConn(c *conn, why string) {
	held := int(c.counted)
	peer := "unknown"
	if sa, err := unix.Getpeername(int(c.fd)); err == nil {
		peer = sockaddrString(sa)
	}
	_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	w.closeConn(c, why)
	w.drops.note(w.now, why, peer, held)
}

// dropLog logs dropped connections at info, at most one line per reason per
// dropLogEvery, each line counting the drops it stood for since the last.
type dropLog struct {
	log     *zap.Logger
	reasons map[string]*dropCount
}

type dropCount struct {
	logged     int64 // loop clock of the last line; 0 before the first
	suppressed int   // drops not logged since then
}

const dropLogEvery = time.Second

func newDropLog(log *zap.Logger) dropLog {
	return dropLog{log: log, reasons: make(map[string]*dropCount)}
}

// note records one drop at loop clock now, logging it unless a line for the
// same reason was written less than dropLogEvery ago.
func (d *dropLog) note(now int64, why, peer string, held int) {
	n := d.reasons[why]
	if n == nil {
		n = new(dropCount)
		d.reasons[why] = n
	}
	if n.logged != 0 && time.Duration(now-n.logged) < dropLogEvery {
		n.suppressed++
		return
	}
	d.log.Info("connection dropped", zap.String("reason", why), zap.String("peer", peer),
		zap.Int("held", held), zap.Int("suppressed", n.suppressed))
	n.logged, n.suppressed = max(now, 1), 0
}

// flush logs the count of drops suppressed for a reason whose last line is
// dropLogEvery old, so no drop goes uncounted.
func (d *dropLog) flush(now int64) {
	for why, n := range d.reasons {
		if time.Duration(now-n.logged) < dropLogEvery {
			continue
		}
		if n.suppressed > 0 {
			d.log.Info("connections dropped", zap.String("reason", why), zap.Int("suppressed", n.suppressed))
			n.logged, n.suppressed = max(now, 1), 0
			continue
		}
		delete(d.reasons, why)
	}
}
