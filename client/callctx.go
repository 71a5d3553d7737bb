package client

import (
	"context"
	"sync"
	"time"
)

// withTimeout is context.WithTimeout for a call's own bound. A parent that
// can never be canceled gets a deadlineCtx, which makes no channel or timer
// until one is asked for: the wait for the answer then needs no select.
func withTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if parent.Done() != nil {
		return context.WithTimeout(parent, d)
	}
	c := &deadlineCtx{Context: parent, deadline: time.Now().Add(d)}
	return c, c.stop
}

// deadlineCtx is a context that ends at its deadline or when its call
// returns. Its methods may be called from any goroutine.
type deadlineCtx struct {
	context.Context // the parent, never canceled; it supplies Value
	deadline        time.Time

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	timer *time.Timer   // ends c at the deadline
	err   error         // why c ended; nil while it runs
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		switch wait := time.Until(c.deadline); {
		case c.err != nil:
			close(c.done)
		case wait <= 0:
			c.endLocked(context.DeadlineExceeded)
		default:
			c.timer = time.AfterFunc(wait, c.expire)
		}
	}
	return c.done
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

func (c *deadlineCtx) String() string { return "client.deadlineCtx(" + c.deadline.String() + ")" }

func (c *deadlineCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(context.DeadlineExceeded)
}

// stop ends c as canceled, as the cancel of context.WithTimeout does.
func (c *deadlineCtx) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.endLocked(context.Canceled)
}

// endLocked ends c with err unless it has ended, and closes done if made.
func (c *deadlineCtx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
}
