package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/protocol"
)

// Error is an error answer from the server; errors.As finds it in Call's error.
type Error = protocol.Error

var (
	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("client is closed")
	// ErrMaybeSent marks a call whose connection failed after its request was
	// written: the server may have run it.
	ErrMaybeSent = errors.New("connection lost after the request was sent; it may have run")
	// errNotSent marks a request that certainly was not run: it never fully
	// reached the wire, its connection could not be made, or the server said
	// goodbye before reading it. It is safe to send again.
	errNotSent = errors.New("request not sent")
	// errGoodbye marks the requests pending when the server said goodbye.
	errGoodbye = errors.New("server closed the connection gracefully before reading the request")
)

// Defaults for zero Options fields.
const (
	DefaultConns        = 2
	DefaultDialTimeout  = 5 * time.Second
	DefaultTimeout      = 30 * time.Second
	DefaultReadTimeout  = time.Minute
	DefaultMaxFrame     = 64 << 20
	DefaultRetries      = 2
	DefaultProbeTimeout = time.Second
	DefaultStallAfter   = time.Second
)

// Options tune a Client. Zero fields take the defaults.
type Options struct {
	Conns       int                // connections per endpoint that requests are spread over
	ByteOrder   protocol.ByteOrder // of the length prefix; the server's -byteorder
	DialTimeout time.Duration
	// Timeout bounds a call whose context has no deadline.
	Timeout time.Duration
	// ReadTimeout drops a connection that has requests outstanding but
	// receives nothing for this long; its calls fail.
	ReadTimeout time.Duration
	MaxFrame    uint32 // largest answer body accepted
	// Retries bounds the extra attempts of a call, each on another endpoint
	// where there is one; see Call for which failures are retried. 0 means
	// DefaultRetries; a negative value turns retries off (resends after a
	// server's goodbye, which ran nothing, still happen).
	Retries int
	// ProbeTimeout bounds the hello on a new connection and the ping that
	// checks an ejected or silent endpoint.
	ProbeTimeout time.Duration
	// StallAfter is how long an endpoint may leave calls unanswered before
	// a ping checks that it is alive.
	StallAfter time.Duration
	// Resolver, if set, supplies the endpoints instead of the target.
	Resolver discovery.Resolver
	// Logger receives endpoint changes and ejections; nil discards them.
	Logger *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.MaxFrame == 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct{ idempotent bool }

// Idempotent marks a call that may run twice, so it is sent again, to another
// endpoint where there is one, when its connection fails before the answer or
// the server answers timeout.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// applyOptions returns the options opts set. Only a call with options pays
// for the struct they write to, which escapes to the heap.
func applyOptions(opts []CallOption) callOptions {
	if len(opts) == 0 {
		return callOptions{}
	}
	co := new(callOptions)
	for _, o := range opts {
		o(co)
	}
	return *co
}

// Client calls the rpcd servers behind a target. Its methods are safe from
// any goroutine.
type Client struct {
	opts   Options
	log    *zap.Logger
	res    discovery.Resolver
	epoch  time.Time
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	eps    atomic.Pointer[[]*endpoint]
	budget retryBudget
	closed atomic.Bool

	mu      sync.Mutex // guards the fields below and ejection decisions
	byAddr  map[string]*endpoint
	changed chan struct{} // closed and replaced when the list changes
	known   bool          // the resolver has delivered a list
}

// New returns a Client of target (see package discovery for the forms). It
// fails only for a target it cannot parse: the endpoints arrive in the
// background, and calls wait for them up to their deadline.
func New(target string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	res := opts.Resolver
	if res == nil {
		var err error
		if res, err = discovery.New(target, opts.Logger); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{opts: opts, log: opts.Logger, res: res, epoch: time.Now(), ctx: ctx, cancel: cancel,
		byAddr: map[string]*endpoint{}, changed: make(chan struct{})}
	c.eps.Store(new([]*endpoint))
	c.budget.init()
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		res.Watch(ctx, c.update)
	}()
	go c.watchStalls()
	return c, nil
}

// Dial is New followed by one connection to an endpoint, made now, so an
// unreachable server or an empty list is reported here.
func Dial(target string, opts Options) (*Client, error) {
	c, err := New(target, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	defer cancel()
	if err := c.connectOne(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return c, nil
}

// connectOne opens the first connection of an endpoint.
func (c *Client) connectOne(ctx context.Context) error {
	e, err := c.pick(ctx, nil)
	if err != nil {
		return err
	}
	s := e.slots[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectLocked(ctx)
}

// Call sends in with params (raw JSON; nil sends null) and returns the answer's
// out and raw JSON result, which the caller owns. An error answer is returned
// as a *protocol.Error.
//
// A failed attempt is tried again on another endpoint where there is one, up
// to Options.Retries times and within a retry budget of about a tenth of the
// calls: a request that was certainly not run (never sent, its connection
// never made, or left unread before the server's goodbye) or answered
// overloaded always; one that may have run (its connection lost after it was
// sent, or answered timeout) only if the call is Idempotent; other error
// answers never.
func (c *Client) Call(ctx context.Context, in string, params []byte, opts ...CallOption) (out string, result []byte, err error) {
	co := applyOptions(opts)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = withTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	frame := protocol.AppendRequest(nil, c.opts.ByteOrder, in, params)
	c.budget.deposit()
	var triedBuf [4]*endpoint
	tried := triedBuf[:0]
	retries, goodbyes := 0, 0
	for {
		var e *endpoint
		if e, err = c.pick(ctx, tried); err != nil {
			break
		}
		out, result, err = e.call(ctx, frame)
		if err == nil || ctx.Err() != nil {
			break
		}
		retry, free := retryable(err, co.idempotent)
		switch {
		case !retry:
		case free && goodbyes < maxGoodbyeRetries:
			goodbyes++
		case !free && retries < c.opts.Retries && c.budget.withdraw():
			retries++
		default:
			retry = false
		}
		if !retry {
			break
		}
		tried = append(tried, e)
	}
	if errors.Is(err, errNotSent) {
		err = fmt.Errorf("call %s: %w", in, err)
	}
	return out, result, err
}

// maxGoodbyeRetries bounds the resends after goodbyes, which do not draw on
// the retry budget: the server asked for them and ran nothing.
const maxGoodbyeRetries = 8

// retryable reports whether a call that failed with err may be sent again,
// and whether that is free of the retry budget.
func retryable(err error, idempotent bool) (retry, free bool) {
	var pe *protocol.Error
	switch {
	case errors.Is(err, ErrClosed):
		return false, false
	case errors.Is(err, errGoodbye):
		return true, true
	case errors.Is(err, errNotSent):
		return true, false
	case errors.As(err, &pe):
		switch pe.Code {
		case protocol.CodeOverloaded:
			return true, false
		case protocol.CodeTimeout:
			return idempotent, false
		}
		return false, false
	case errors.Is(err, ErrMaybeSent):
		return idempotent, false
	}
	return false, false
}

// Close closes every connection; outstanding calls fail.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.cancel()
	c.mu.Lock()
	all := c.byAddr
	c.byAddr = nil
	c.mu.Unlock()
	for _, e := range all {
		e.close(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// now is the client's monotonic clock.
func (c *Client) now() int64 { return int64(time.Since(c.epoch)) }

// retryBudget lets retries be about a tenth of the calls, with a reserve for
// a client that has made few calls.
type retryBudget struct{ milli atomic.Int64 }

const (
	budgetDeposit = 100     // a call earns a tenth of a retry
	budgetCost    = 1000    // a retry
	budgetStart   = 10_000  // ten retries to begin with
	budgetMax     = 100_000 // the most that can be saved up
)

func (b *retryBudget) init() { b.milli.Store(budgetStart) }

func (b *retryBudget) deposit() {
	if b.milli.Load() < budgetMax {
		b.milli.Add(budgetDeposit)
	}
}

func (b *retryBudget) withdraw() bool {
	for {
		v := b.milli.Load()
		if v < budgetCost {
			return false
		}
		if b.milli.CompareAndSwap(v, v-budgetCost) {
			return true
		}
	}
}
