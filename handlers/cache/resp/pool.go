package resp

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is the error of Get on a closed Pool.
var ErrClosed = errors.New("redis connection pool is closed")

// Pool hands out connections to one Redis server and keeps up to a number of
// idle ones. A Get with no idle connection dials a new one, so the number of
// open connections follows the number of exchanges under way. Its methods
// are safe from any goroutine.
type Pool struct {
	opt     Options
	maxIdle int

	mu     sync.Mutex
	idle   []*Conn
	closed bool
}

// NewPool returns a pool that dials as opt says and keeps up to maxIdle idle
// connections. It does not connect.
func NewPool(opt Options, maxIdle int) *Pool {
	return &Pool{opt: opt, maxIdle: maxIdle}
}

// Get returns an idle connection, or dials one.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return Dial(ctx, p.opt)
}

// Put returns c to the pool after an exchange whose replies were all read.
// A broken connection, or one the pool has no room for, is closed.
func (p *Pool) Put(c *Conn) {
	c.Discard()
	if c.Err() == nil {
		p.mu.Lock()
		if !p.closed && len(p.idle) < p.maxIdle {
			p.idle = append(p.idle, c)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	_ = c.Close()
}

// Close closes the idle connections; connections out now are closed when
// they come back.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
