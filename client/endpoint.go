package client

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/protocol"
)

// Backoffs, each jittered to between half and all of its value.
const (
	dialBackoffBase  = 50 * time.Millisecond // after a failed dial, doubling
	dialBackoffMax   = 2 * time.Second
	ejectBackoffBase = 250 * time.Millisecond // before an ejected endpoint is probed, doubling
	ejectBackoffMax  = 5 * time.Second
	connFailuresMax  = 3 // connection failures in a row that eject
)

// endpoint is one server of the list, with its connections and health.
type endpoint struct {
	client     *Client
	addr       string
	weight     atomic.Int64
	slots      []*slot
	calls      atomic.Int64 // calls in flight
	busySince  atomic.Int64 // client clock when calls last rose from 0
	lastAnswer atomic.Int64 // client clock of the last frame received
	connFails  atomic.Int32 // connection failures since the last answer
	ejected    atomic.Bool
	dialAfter  atomic.Int64 // client clock before which no dial is made

	mu        sync.Mutex
	dialFails int  // dials failed in a row
	probing   bool // a probe or a probe loop runs; one runs while ejected
	removed   bool
}

func (c *Client) newEndpoint(addr string) *endpoint {
	e := &endpoint{client: c, addr: addr, slots: make([]*slot, c.opts.Conns)}
	for i := range e.slots {
		e.slots[i] = &slot{ep: e}
	}
	return e
}

// call sends frame on one of e's connections and waits for its answer.
func (e *endpoint) call(ctx context.Context, frame []byte) (string, []byte, error) {
	if e.calls.Add(1) == 1 {
		e.busySince.Store(e.client.now())
	}
	defer e.calls.Add(-1)
	s := e.pickSlot()
	if len(e.slots) > 1 { // a lone connection is never weighed against another
		s.calls.Add(1)
		defer s.calls.Add(-1)
	}
	p, err := s.send(ctx, frame)
	if err != nil {
		return "", nil, err
	}
	// Should the call end first, its answer still arrives and is read into
	// p, keeping the order, and dropped.
	if dc, ok := ctx.(*deadlineCtx); ok {
		// Only the deadline can end the call: a timer settles p then, and
		// the wait is on p alone.
		t := time.AfterFunc(time.Until(dc.deadline), func() {
			p.settle("", nil, fmt.Errorf("wait for answer: %w", context.DeadlineExceeded))
		})
		<-p.done
		t.Stop()
		return p.out, p.result, p.err
	}
	select {
	case <-p.done:
		return p.out, p.result, p.err
	case <-ctx.Done():
		return "", nil, fmt.Errorf("wait for answer: %w", ctx.Err())
	}
}

// open makes a new connection to e, after the reconnect backoff if a dial
// failed lately.
func (e *endpoint) open(ctx context.Context) (*session, error) {
	c := e.client
	if wait := time.Duration(e.dialAfter.Load() - c.now()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait to redial %s: %w", e.addr, ctx.Err())
		}
	}
	nc, goodbye, err := dial(ctx, e.addr, &c.opts)
	if err != nil {
		e.dialFailed(err)
		return nil, err
	}
	e.mu.Lock()
	e.dialFails = 0
	e.mu.Unlock()
	return &session{ep: e, nc: nc, readTimeout: c.opts.ReadTimeout, goodbye: goodbye}, nil
}

// dialFailed backs further dials off, ejects e and asks the resolver for a
// fresh list: a refused host may have moved.
func (e *endpoint) dialFailed(err error) {
	e.mu.Lock()
	e.dialFails++
	d := backoff(dialBackoffBase, dialBackoffMax, e.dialFails)
	e.mu.Unlock()
	e.dialAfter.Store(e.client.now() + int64(d))
	e.eject(err)
	e.client.res.Refresh()
}

// connFailed counts a connection lost without a goodbye; a few in a row
// eject e. It runs on the connection's reader goroutine.
func (e *endpoint) connFailed() {
	if e.connFails.Add(1) >= connFailuresMax {
		e.eject(fmt.Errorf("%d connections lost in a row", connFailuresMax))
	}
	e.client.res.Refresh()
}

// answered records that e sent a frame. It runs on a reader goroutine.
func (e *endpoint) answered() {
	e.lastAnswer.Store(e.client.now())
	if e.connFails.Load() != 0 {
		e.connFails.Store(0)
	}
}

// eject takes e out of the picks until a probe finds it well, unless that
// would leave more than half of the endpoints ejected, or none in use.
func (e *endpoint) eject(cause error) {
	c := e.client
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.ejected.Load() || c.closed.Load() {
		return
	}
	eps := *c.eps.Load()
	out := 1
	for _, o := range eps {
		if o.ejected.Load() {
			out++
		}
	}
	if 2*out > len(eps) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return
	}
	e.ejected.Store(true)
	c.log.Warn("endpoint ejected", zap.String("addr", e.addr), zap.Error(cause))
	if !e.probing {
		e.probing = true
		c.wg.Add(1)
		go e.probeUntilWell()
	}
}

// probeUntilWell pings e on a fresh connection after a growing backoff until
// it answers, then puts it back in the picks.
func (e *endpoint) probeUntilWell() {
	c := e.client
	defer c.wg.Done()
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(backoff(ejectBackoffBase, ejectBackoffMax, attempt))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := e.probe()
		e.mu.Lock()
		if err == nil || e.removed {
			e.probing = false
			e.dialFails = 0
			e.dialAfter.Store(0)
			e.connFails.Store(0)
			e.ejected.Store(false)
			e.mu.Unlock()
			if err == nil {
				c.log.Info("endpoint back", zap.String("addr", e.addr))
			}
			return
		}
		e.mu.Unlock()
	}
}

// probe dials e, says hello and pings, within Options.ProbeTimeout.
func (e *endpoint) probe() error {
	c := e.client
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ProbeTimeout)
	defer cancel()
	opts := c.opts
	opts.DialTimeout = min(opts.DialTimeout, opts.ProbeTimeout)
	nc, _, err := dial(ctx, e.addr, &opts)
	if err != nil {
		return err
	}
	defer nc.Close()
	return ping(nc, &opts)
}

// ping sends one ping on nc and reads its pong: only a pong that echoes the
// ping's params counts, not a goodbye or another answer.
func ping(nc net.Conn, opts *Options) error {
	_ = nc.SetDeadline(time.Now().Add(opts.ProbeTimeout))
	token := strconv.AppendUint([]byte(`"probe `), rand.Uint64(), 16)
	token = append(token, '"')
	if _, err := nc.Write(protocol.AppendRequest(nil, opts.ByteOrder, "ping", token)); err != nil {
		return fmt.Errorf("send ping: %w", err)
	}
	body, err := protocol.ReadFrame(nc, opts.ByteOrder, opts.MaxFrame, nil)
	if err != nil {
		return fmt.Errorf("read pong: %w", err)
	}
	out, result, err := decodeAnswer(body)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if out != "pong" || !bytes.Equal(result, token) {
		return fmt.Errorf("ping answered %s %s, want pong %s", out, result, token)
	}
	return nil
}

// watchStalls pings, on a fresh connection, each endpoint that has calls
// waiting and has sent nothing for Options.StallAfter, and ejects it if the
// ping fails: a frozen host is found in seconds, not at ReadTimeout.
func (c *Client) watchStalls() {
	defer c.wg.Done()
	tick := time.NewTicker(c.opts.StallAfter / 4)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		now := c.now()
		for _, e := range *c.eps.Load() {
			quiet := now - max(e.busySince.Load(), e.lastAnswer.Load())
			if e.calls.Load() > 0 && !e.ejected.Load() && quiet > int64(c.opts.StallAfter) {
				e.checkStalled()
			}
		}
	}
}

// checkStalled probes e in the background unless a probe runs already.
func (e *endpoint) checkStalled() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.probing || e.removed {
		return
	}
	e.probing = true
	c := e.client
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := e.probe()
		e.mu.Lock()
		e.probing = false
		if e.ejected.Load() && !e.removed {
			// Ejected meanwhile, when eject left the probe loop to us.
			e.probing = true
			c.wg.Add(1)
			go e.probeUntilWell()
		}
		e.mu.Unlock()
		if err != nil {
			e.eject(fmt.Errorf("calls unanswered for %v, and the probe failed: %w", c.opts.StallAfter, err))
			return
		}
		e.lastAnswer.Store(c.now()) // alive: its calls are just slow
	}()
}

// retire takes e out of service: its connections close once their answers
// are in.
func (e *endpoint) retire() {
	e.mu.Lock()
	e.removed = true
	e.mu.Unlock()
	for _, s := range e.slots {
		s.retire()
	}
}

// close fails e's connections with cause.
func (e *endpoint) close(cause error) {
	e.mu.Lock()
	e.removed = true
	e.mu.Unlock()
	for _, s := range e.slots {
		s.close(cause)
	}
}

// backoff returns base doubled for each attempt after the first, capped at
// most, jittered to between half and all of it.
func backoff(base, most time.Duration, attempt int) time.Duration {
	d := most
	if attempt < 30 {
		d = min(most, base<<(attempt-1))
	}
	return d/2 + rand.N(d/2+1)
}
