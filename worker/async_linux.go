package worker

import (
	"bytes"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// asyncMethod is one Async method on this loop: its handler, opened on first
// use, and the calls read this turn. Loop goroutine only.
type asyncMethod struct {
	name    string
	method  []byte // name, for the answers' access log records
	h       rpc.AsyncHandler
	waiting []*asyncCall
	listed  bool // in asyncSet.due
}

// asyncCall is one call handed to an Async handler, with the slot its answer
// fills. It owns a copy of its params, and is reused once its handler is done
// with it.
type asyncCall struct {
	call    *rpc.AsyncCall
	params  []byte
	fd      int32
	connID  uint64
	seq     uint64
	row     int
	readAt  int64
	in      int
	method  []byte
	running bool // handed to the handler and not yet done
}

// asyncSet is the loop's Async methods, the descriptors and timers they
// asked for, and what runs when the loop stops.
type asyncSet struct {
	byName  map[string]*asyncMethod
	due     []*asyncMethod
	free    []*asyncCall
	batch   []*rpc.AsyncCall // the calls of one handler call, reused
	watches map[int]*watch
	timers  []timer // by due time
	atClose []func()
}

type watch struct {
	events rpc.Events
	f      func(rpc.Events)
}

type timer struct {
	at int64 // loop clock
	f  func()
}

// maxFreeAsync bounds the async calls kept for reuse.
const maxFreeAsync = 4096

// loopHandle is the rpc.Loop a worker gives its Async handlers.
type loopHandle struct{ w *Worker }

var _ rpc.Loop = loopHandle{}

// epollEvents converts an Async handler's interest to epoll's flags.
func epollEvents(ev rpc.Events) uint32 {
	var e uint32
	if ev&rpc.Readable != 0 {
		e |= readEvents
	}
	if ev&rpc.Writable != 0 {
		e |= writeEvents
	}
	return e
}

// Watch registers fd in the loop's epoll set, or changes its interest.
func (l loopHandle) Watch(fd int, events rpc.Events, f func(rpc.Events)) error {
	a := &l.w.async
	if a.watches == nil {
		a.watches = make(map[int]*watch)
	}
	if wt := a.watches[fd]; wt != nil {
		if wt.events != events {
			if err := l.w.poll.mod(fd, epollEvents(events)); err != nil {
				return err
			}
		}
		wt.events, wt.f = events, f
		return nil
	}
	if err := l.w.poll.add(fd, epollEvents(events)); err != nil {
		return err
	}
	a.watches[fd] = &watch{events: events, f: f}
	return nil
}

// Unwatch removes fd from the loop's epoll set.
func (l loopHandle) Unwatch(fd int) error {
	if _, ok := l.w.async.watches[fd]; !ok {
		return nil
	}
	delete(l.w.async.watches, fd)
	return l.w.poll.del(fd)
}

// After adds a timer, kept in due order.
func (l loopHandle) After(d time.Duration, f func()) {
	a := &l.w.async
	t := timer{at: l.w.clock() + int64(d), f: f}
	i := len(a.timers)
	for i > 0 && a.timers[i-1].at > t.at {
		i--
	}
	a.timers = append(a.timers, timer{})
	copy(a.timers[i+1:], a.timers[i:])
	a.timers[i] = t
}

// AtClose lists f to run when the loop stops.
func (l loopHandle) AtClose(f func()) { l.w.async.atClose = append(l.w.async.atClose, f) }

// handleWatched runs the callback of a descriptor an Async handler watches,
// then settles the conns whose answers it completed.
func (w *Worker) handleWatched(fd int, ev uint32) {
	wt := w.async.watches[fd]
	if wt == nil {
		return // unwatched earlier in this turn
	}
	var ready rpc.Events
	if isReadEvent(ev) {
		ready |= rpc.Readable
	}
	if isWriteEvent(ev) {
		ready |= rpc.Writable
	}
	if isErrorEvent(ev) || isHangup(ev) {
		// The handler's next read or write collects the error.
		ready |= rpc.Readable | rpc.Writable
	}
	wt.f(ready)
	w.settleTouched()
}

// runTimers runs the timers that are due.
func (w *Worker) runTimers() {
	a := &w.async
	n := 0
	for n < len(a.timers) && a.timers[n].at <= w.now {
		n++
	}
	if n == 0 {
		return
	}
	due := append([]timer(nil), a.timers[:n]...)
	a.timers = append(a.timers[:0], a.timers[n:]...)
	for _, t := range due {
		t.f()
	}
	w.settleTouched()
}

// timerWait is how long the loop may sleep before the next timer; maxTick
// when none is set.
func (w *Worker) timerWait() time.Duration {
	if len(w.async.timers) == 0 {
		return maxTick
	}
	return time.Duration(w.async.timers[0].at - w.clock())
}

// closeAsync runs what the Async handlers asked to run when the loop stops.
func (w *Worker) closeAsync() {
	for _, f := range w.async.atClose {
		f()
	}
	w.async.atClose = nil
}

// asyncFor returns this loop's state for the current request's method, an
// Async method, opening its handler on first use.
func (w *Worker) asyncFor() *asyncMethod {
	if m := w.async.byName[string(w.req.Method)]; m != nil {
		return m
	}
	open, _ := w.reg.LookupAsync(w.req.Method)
	if w.async.byName == nil {
		w.async.byName = make(map[string]*asyncMethod)
	}
	m := &asyncMethod{name: string(w.req.Method), method: bytes.Clone(w.req.Method)}
	m.h = open(loopHandle{w})
	w.async.byName[m.name] = m
	return m
}

// enqueueAsync adds the current request to its method's calls of this turn,
// with a slot on c that keeps its answer in order. A full queue answers
// overloaded.
func (w *Worker) enqueueAsync(c *conn) {
	m := w.asyncFor()
	if len(m.waiting) >= w.cfg.QueueSize {
		w.answer(c, nil, errOverloaded)
		return
	}
	if c.order == nil {
		c.order = w.newQueue()
	}
	q := c.order
	ac := w.newAsyncCall()
	ac.params = append(ac.params[:0], w.req.Params...)
	ac.call.Reset(ac.params)
	ac.fd, ac.connID, ac.seq, ac.method = c.fd, c.id, q.nextSeq(), m.method
	ac.row, ac.readAt, ac.in = w.meter.row, w.now, w.meter.in
	m.waiting = append(m.waiting, ac)
	q.pushPending()
	w.meter.inFlight++
	w.trackDeadline(c, ac.seq, w.now+int64(w.cfg.HandlerTimeout), m.method)
	if !m.listed {
		m.listed = true
		w.async.due = append(w.async.due, m)
	}
}

func (w *Worker) newAsyncCall() *asyncCall {
	if n := len(w.async.free); n > 0 {
		ac := w.async.free[n-1]
		w.async.free = w.async.free[:n-1]
		return ac
	}
	ac := new(asyncCall)
	ac.call = rpc.NewAsyncCall(func(*rpc.AsyncCall) { w.completeAsync(ac) })
	return ac
}

// startAsync hands each Async method the calls read this turn. Loop goroutine
// only, at the end of a turn.
func (w *Worker) startAsync() {
	for _, m := range w.async.due {
		m.listed = false
		batch := w.async.batch[:0]
		for _, ac := range m.waiting {
			ac.running = true
			batch = append(batch, ac.call)
		}
		w.callAsync(m, batch)
		clear(batch)
		w.async.batch = batch[:0]
		clear(m.waiting)
		m.waiting = m.waiting[:0]
	}
	clear(w.async.due)
	w.async.due = w.async.due[:0]
	w.settleTouched()
}

// callAsync runs m's handler. When it panics, every call it has not
// completed is answered internal, and a Done for one later is ignored.
func (w *Worker) callAsync(m *asyncMethod, calls []*rpc.AsyncCall) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("async handler panicked", zap.String("method", m.name), zap.Int("calls", len(calls)),
				zap.String("panic", fmt.Sprint(p)), zap.StackSkip("stack", 1))
			err := protocol.Errorf(protocol.CodeInternal, "method %q panicked", m.name)
			for _, ac := range m.waiting {
				if ac.running {
					// Not reused: the handler may still hold it.
					ac.running = false
					ac.call.Err = err
					w.fileAsync(ac)
				}
			}
		}
	}()
	m.h(loopHandle{w}, calls)
}

// completeAsync is ac's Done: it files the answer and frees ac for reuse.
func (w *Worker) completeAsync(ac *asyncCall) {
	if !ac.running {
		return // a panic answered it already, or a second Done
	}
	ac.running = false
	w.fileAsync(ac)
	ac.call.Params, ac.call.Err = nil, nil
	if len(w.async.free) < maxFreeAsync && cap(ac.params) <= maxKeptParams {
		w.async.free = append(w.async.free, ac)
	}
}

// fileAsync files ac's answer into its slot, unless the slot was answered
// timeout or its conn closed meanwhile.
func (w *Worker) fileAsync(ac *asyncCall) {
	call := &ac.call.Reply
	r := result{fd: ac.fd, connID: ac.connID, seq: ac.seq, isErr: ac.call.Err != nil,
		code: uint8(codeIndex(ac.call.Err)), row: ac.row, readAt: ac.readAt, method: ac.method, in: ac.in}
	if c := w.connByID(ac.fd, ac.connID); c != nil && c.order != nil && c.order.pending(ac.seq) {
		buf := w.frameBuf(answerOverhead + len(call.Out()) + len(call.Result()))
		r.frame = rpc.AppendAnswer(buf, w.cfg.ByteOrder, call, ac.call.Err)
	}
	w.fileResult(r)
}

// maxKeptParams bounds the params buffer a reused async call keeps.
const maxKeptParams = 4 << 10
