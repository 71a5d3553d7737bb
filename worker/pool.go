package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// answerOverhead is room for an answer frame's header and envelope.
const answerOverhead = 64

// job is one request for the offload pool. It owns a copy of the method name and
// params, since the loop reuses the bytes they came from.
type job struct {
	h      rpc.Handler
	buf    []byte // method followed by params
	split  int    // len(method)
	fd     int32
	connID uint64
	seq    uint64 // the answer slot on the connection
	// deadline ends the call: its ctx carries it, and a job still queued at
	// its deadline is answered timeout without running.
	deadline time.Time
	row      int   // its method's metrics row
	readAt   int64 // loop clock when its request was read
	in       int   // its request frame's size, for the access log
}

func (j *job) method() []byte { return j.buf[:j.split] }
func (j *job) params() []byte { return j.buf[j.split:] }

// result is a finished job: a whole encoded answer frame for one slot.
type result struct {
	fd     int32
	connID uint64
	seq    uint64
	frame  []byte
	isErr  bool
	code   uint8 // the answer's index in metrics.Codes
	row    int   // the job's row and readAt
	readAt int64
	method []byte // the request's method and frame size, for the access log
	in     int
}

// pool runs Blocking handlers on a fixed set of goroutines fed by a bounded
// queue, and hands finished answers back to the loop.
type pool struct {
	jobs    chan job
	order   protocol.ByteOrder
	log     *zap.Logger
	wake    func()
	timeout *protocol.Error // the answer for a job past its deadline
	stopped atomic.Bool

	mu       sync.Mutex
	results  []result   // finished, not yet collected by the loop
	returned []*batcher // batchers whose batch is in results
	spare    []result   // the loop's previous batch, reused; loop only
	spareB   []*batcher // likewise for returned
}

func newPool(size, queue int, order protocol.ByteOrder, log *zap.Logger, wake func(), timeout *protocol.Error) *pool {
	p := &pool{jobs: make(chan job, queue), order: order, log: log, wake: wake, timeout: timeout}
	for range size {
		go p.run()
	}
	return p
}

// submit queues j without blocking; false means the queue is full.
// Loop goroutine only.
func (p *pool) submit(j job) bool {
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

// stop lets the goroutines exit once their current handler returns; queued
// jobs are dropped. Loop goroutine only, after the last submit.
func (p *pool) stop() {
	p.stopped.Store(true)
	close(p.jobs)
}

func (p *pool) run() {
	lowerPriority()
	var rep rpc.Reply
	for j := range p.jobs {
		if p.stopped.Load() {
			continue
		}
		rep.Reset()
		res := result{fd: j.fd, connID: j.connID, seq: j.seq, row: j.row, readAt: j.readAt,
			method: j.method(), in: j.in}
		err := p.call(&j, &rep)
		buf := make([]byte, 0, answerOverhead+len(rep.Out())+len(rep.Result()))
		res.frame, res.isErr = rpc.AppendAnswer(buf, p.order, &rep, err), err != nil
		res.code = uint8(codeIndex(err))
		p.deliver(res)
	}
}

// call runs j's handler under its deadline. An answer that comes too late
// becomes timeout, whatever the handler returned.
func (p *pool) call(j *job, rep *rpc.Reply) error {
	if !time.Now().Before(j.deadline) {
		return p.timeout
	}
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline)
	defer cancel()
	err := callHandler(ctx, p.log, j.h, j.method(), j.params(), rep)
	if ctx.Err() != nil {
		return p.timeout
	}
	return err
}

// deliver queues res for the loop and wakes it. Safe from any goroutine.
func (p *pool) deliver(res result) {
	p.mu.Lock()
	p.results = append(p.results, res)
	p.mu.Unlock()
	p.wake()
}

// deliverBatch queues the answers of b's batch for the loop and wakes it.
// Safe from any goroutine.
func (p *pool) deliverBatch(res []result, b *batcher) {
	p.mu.Lock()
	p.results = append(p.results, res...)
	p.returned = append(p.returned, b)
	p.mu.Unlock()
	p.wake()
}

// collect takes every finished result, and the batchers whose batches they
// complete. The slices are valid until the next collect. Loop goroutine only.
func (p *pool) collect() ([]result, []*batcher) {
	clear(p.spare)
	clear(p.spareB)
	p.mu.Lock()
	batch, returned := p.results, p.returned
	p.results, p.returned = p.spare[:0], p.spareB[:0]
	p.mu.Unlock()
	p.spare, p.spareB = batch, returned
	return batch, returned
}
