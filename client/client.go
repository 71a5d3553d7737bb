package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
	// errNotSent marks a request that never fully reached the wire; it is
	// safe to send again.
	errNotSent = errors.New("request not sent")
)

// Defaults for zero Options fields.
const (
	DefaultConns       = 2
	DefaultDialTimeout = 5 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultReadTimeout = time.Minute
	DefaultMaxFrame    = 64 << 20
	DefaultRetries     = 2
)

// Options tune a Client. Zero fields take the defaults.
type Options struct {
	Conns       int                // connections requests are spread over
	ByteOrder   protocol.ByteOrder // of the length prefix; the server's -byteorder
	DialTimeout time.Duration
	// Timeout bounds a call whose context has no deadline.
	Timeout time.Duration
	// ReadTimeout drops a connection that has requests outstanding but
	// receives nothing for this long; its calls fail.
	ReadTimeout time.Duration
	MaxFrame    uint32 // largest answer body accepted
	Retries     int    // extra attempts for Idempotent calls whose connection failed
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
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	return o
}

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct{ idempotent bool }

// Idempotent marks a call that may run twice, so it is sent again on a new
// connection when its connection fails before the answer.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// Client calls one rpcd server. Its methods are safe from any goroutine.
type Client struct {
	addr   string
	opts   Options
	slots  []*slot
	next   atomic.Uint32
	closed atomic.Bool
}

// Dial connects to the server at addr. The first connection is made now, so an
// unreachable server is reported here; the others are made on first use.
func Dial(addr string, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	c := &Client{addr: addr, opts: opts, slots: make([]*slot, opts.Conns)}
	for i := range c.slots {
		c.slots[i] = &slot{client: c}
	}
	if err := c.slots[0].connect(); err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// Call sends in with params (raw JSON; nil sends null) and returns the answer's
// out and raw JSON result, which the caller owns. An error answer is returned
// as a *protocol.Error.
func (c *Client) Call(ctx context.Context, in string, params []byte, opts ...CallOption) (out string, result []byte, err error) {
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	frame := protocol.AppendRequest(nil, c.opts.ByteOrder, in, params)
	for attempt := 0; ; attempt++ {
		out, result, err = c.try(ctx, frame)
		retry := errors.Is(err, errNotSent) || co.idempotent && errors.Is(err, ErrMaybeSent)
		if !retry || attempt >= c.opts.Retries || ctx.Err() != nil {
			break
		}
	}
	if errors.Is(err, errNotSent) {
		err = fmt.Errorf("call %s: connection lost before the request was sent: %w", in, err)
	}
	return out, result, err
}

// try sends frame once and waits for its answer.
func (c *Client) try(ctx context.Context, frame []byte) (string, []byte, error) {
	if c.closed.Load() {
		return "", nil, ErrClosed
	}
	s := c.slots[int(c.next.Add(1))%len(c.slots)]
	p, err := s.send(ctx, frame)
	if err != nil {
		return "", nil, err
	}
	select {
	case <-p.done:
		return p.out, p.result, p.err
	case <-ctx.Done():
		// The answer still arrives and is read into p, keeping the order.
		return "", nil, fmt.Errorf("wait for answer: %w", ctx.Err())
	}
}

// Close closes every connection; outstanding calls fail.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, s := range c.slots {
		s.close()
	}
	return nil
}
