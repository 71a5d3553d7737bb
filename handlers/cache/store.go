package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcd/rpcd/handlers/cache/resp"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// Defaults for zero Config fields. The I/O timeouts are short so that a Redis
// that went away answers unavailable promptly; each call is also bounded by
// its handler's deadline.
const (
	DefaultPoolSize    = 16
	DefaultDialTimeout = time.Second
	DefaultIOTimeout   = time.Second
)

// Config names the Redis server and tunes the client.
type Config struct {
	Addr        string // host:port
	Password    string // AUTH password; empty for none
	DB          int    // database number
	PoolSize    int    // idle connections kept; match the worker's pool size
	DialTimeout time.Duration
	IOTimeout   time.Duration // each exchange's write and the reads of its replies
}

// notConfigured answers every method while no Redis client is open.
var notConfigured = protocol.Errorf(protocol.CodeUnavailable,
	"no Redis is configured for the cache; start rpcd with -redis=host:port")

// Store serves the cache methods from one pool of Redis connections. Its
// methods are safe from any goroutine.
type Store struct {
	pool atomic.Pointer[resp.Pool]
	addr atomic.Pointer[string]
	dest atomic.Pointer[destination]

	mu    sync.Mutex
	pipes map[rpc.Loop]*pipe // each event loop's own connection
}

// destination is where the event loops' connections go: Redis's address,
// resolved once at Open, since a loop must not wait on a lookup.
type destination struct {
	opt  resp.Options
	addr netip.AddrPort
	err  error // the lookup's failure, answered as unavailable
}

// New returns a Store with no Redis client: every method answers unavailable
// until Open.
func New() *Store { return new(Store) }

// Open creates the Redis client. It does not contact Redis: the first calls
// connect, and calls answer unavailable while Redis is unreachable.
func (s *Store) Open(cfg Config) error {
	if cfg.Addr == "" {
		return errors.New("open cache: no Redis address")
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	opt := resp.Options{Addr: cfg.Addr, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: cfg.DialTimeout, IOTimeout: cfg.IOTimeout}
	pool := resp.NewPool(opt, cfg.PoolSize)
	if old := s.pool.Swap(pool); old != nil {
		_ = old.Close()
	}
	s.addr.Store(&cfg.Addr)
	s.dest.Store(resolve(opt))
	return nil
}

// resolve looks up opt.Addr once, for connects made by an event loop.
func resolve(opt resp.Options) *destination {
	d := &destination{opt: opt}
	ta, err := net.ResolveTCPAddr("tcp", opt.Addr)
	if err != nil {
		d.err = fmt.Errorf("resolve redis address: %w", err)
		return d
	}
	ap := ta.AddrPort()
	d.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return d
}

// target is where a loop's connection goes, or the error to answer.
func (s *Store) target() (resp.Options, netip.AddrPort, error) {
	d := s.dest.Load()
	if d == nil {
		return resp.Options{}, netip.AddrPort{}, notConfigured
	}
	return d.opt, d.addr, d.err
}

// ioTimeout bounds the wait for a reply on a loop's connection.
func (s *Store) ioTimeout() time.Duration {
	if d := s.dest.Load(); d != nil {
		return d.opt.IOTimeout
	}
	return DefaultIOTimeout
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	pool := s.pool.Load()
	if pool == nil {
		return notConfigured
	}
	if err := ping(ctx, pool); err != nil {
		return fmt.Errorf("ping redis at %s: %w", *s.addr.Load(), err)
	}
	return nil
}

func ping(ctx context.Context, pool *resp.Pool) error {
	c, err := pool.Get(ctx)
	if err != nil {
		return err
	}
	defer pool.Put(c)
	c.Begin(1)
	c.ArgString("PING")
	if err := c.Flush(ctx); err != nil {
		return err
	}
	r, err := read(c)
	if err == nil && (r.Kind != resp.Status || string(r.Str) != "PONG") {
		err = errUnexpected
	}
	return err
}

// Close releases the Redis client; the methods answer unavailable afterwards.
func (s *Store) Close() error {
	s.dest.Store(nil)
	pool := s.pool.Swap(nil)
	if pool == nil {
		return nil
	}
	if err := pool.Close(); err != nil {
		return fmt.Errorf("close redis connections: %w", err)
	}
	return nil
}

// client returns the open pool, or the unavailable error.
func (s *Store) client() (*resp.Pool, error) {
	if pool := s.pool.Load(); pool != nil {
		return pool, nil
	}
	return nil, notConfigured
}

// handler adapts m, a method that runs on its own, to an rpc.Handler: it
// checks for a client and the params, runs m on a connection of its own, and
// turns Redis failures into coded errors.
func (s *Store) handler(m *methodSpec) rpc.Handler {
	return func(ctx context.Context, raw []byte, rep *rpc.Reply) error {
		pool, err := s.client()
		if err != nil {
			return err
		}
		var p params
		if err := m.parseCall(raw, &p); err != nil {
			return err
		}
		c, err := pool.Get(ctx)
		if err == nil {
			err = m.run(ctx, c, &p, rep)
			pool.Put(c)
		}
		if err != nil {
			return s.answerError(ctx, m.name, err)
		}
		rep.SetOut(m.out)
		return nil
	}
}

// batchHandler adapts m, a method of one command, to an rpc.BatchHandler: it
// sends the commands of every call with valid params to Redis in one write,
// then answers each call from its own reply.
func (s *Store) batchHandler(m *methodSpec) rpc.BatchHandler {
	return func(ctx context.Context, calls []rpc.Call) {
		pool, err := s.client()
		if err != nil {
			for i := range calls {
				calls[i].Err = err
			}
			return
		}
		ps := make([]params, len(calls))
		queued := 0
		for i := range calls {
			if calls[i].Err = m.parseCall(calls[i].Params, &ps[i]); calls[i].Err == nil {
				queued++
			}
		}
		if queued > 0 {
			s.exchange(ctx, pool, m, calls, ps)
		}
		for i := range calls {
			if calls[i].Err == nil {
				calls[i].Reply.SetOut(m.out)
			}
		}
	}
}

// exchange sends the commands of the calls whose params passed, reads their
// replies in order, and sets each call's result or error.
func (s *Store) exchange(ctx context.Context, pool *resp.Pool, m *methodSpec, calls []rpc.Call, ps []params) {
	c, err := pool.Get(ctx)
	if err != nil {
		failQueued(calls, s.answerError(ctx, m.name, err))
		return
	}
	defer pool.Put(c)
	sent := make([]bool, len(calls))
	for i := range calls {
		if calls[i].Err == nil {
			calls[i].Err = m.send(c, &ps[i])
			sent[i] = calls[i].Err == nil
		}
	}
	if err := c.Flush(ctx); err != nil {
		failQueued(calls, s.answerError(ctx, m.name, err))
		return
	}
	for i := range calls {
		if sent[i] {
			if err := m.recv(c, &ps[i], &calls[i].Reply); err != nil {
				calls[i].Err = s.answerError(ctx, m.name, err)
			}
		}
	}
}

// failQueued fails every call that has no error yet with err.
func failQueued(calls []rpc.Call, err error) {
	for i := range calls {
		if calls[i].Err == nil {
			calls[i].Err = err
		}
	}
}
