package cache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
	PoolSize    int    // connections to Redis; match the worker's pool size
	DialTimeout time.Duration
	IOTimeout   time.Duration // each read and write on a Redis connection
}

// notConfigured answers every method while no Redis client is open.
var notConfigured = protocol.Errorf(protocol.CodeUnavailable,
	"no Redis is configured for the cache; start rpcd with -redis=host:port")

// Store serves the cache methods from one Redis client. Its methods are safe
// from any goroutine.
type Store struct {
	rdb  atomic.Pointer[redis.Client]
	addr atomic.Pointer[string]
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
	rdb := redis.NewClient(&redis.Options{
		Addr:                  cfg.Addr,
		Password:              cfg.Password,
		DB:                    cfg.DB,
		PoolSize:              cfg.PoolSize,
		PoolTimeout:           cfg.IOTimeout,
		DialTimeout:           cfg.DialTimeout,
		ReadTimeout:           cfg.IOTimeout,
		WriteTimeout:          cfg.IOTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1, // a retried INCR could count twice
		DisableIndentity:      true,
	})
	if old := s.rdb.Swap(rdb); old != nil {
		_ = old.Close()
	}
	s.addr.Store(&cfg.Addr)
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	rdb := s.rdb.Load()
	if rdb == nil {
		return notConfigured
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis at %s: %w", *s.addr.Load(), err)
	}
	return nil
}

// Close releases the Redis client; the methods answer unavailable afterwards.
func (s *Store) Close() error {
	rdb := s.rdb.Swap(nil)
	if rdb == nil {
		return nil
	}
	if err := rdb.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// client returns the open Redis client, or the unavailable error.
func (s *Store) client() (*redis.Client, error) {
	if rdb := s.rdb.Load(); rdb != nil {
		return rdb, nil
	}
	return nil, notConfigured
}

// handler adapts m, a method that runs on its own, to an rpc.Handler: it
// checks for a client and the params, runs m, and turns Redis failures into
// coded errors.
func (s *Store) handler(m *methodSpec) rpc.Handler {
	return func(ctx context.Context, raw []byte, rep *rpc.Reply) error {
		rdb, err := s.client()
		if err != nil {
			return err
		}
		p, _, err := m.parseCall(raw)
		if err == nil {
			err = m.run(ctx, rdb, p, rep)
		}
		if err != nil {
			return s.answerError(ctx, m.name, err)
		}
		rep.SetOut(m.out)
		return nil
	}
}

// batchHandler adapts m, a method of one command, to an rpc.BatchHandler: it
// sends the commands of every call with valid params to Redis as one
// pipeline, then answers each call from its own reply.
func (s *Store) batchHandler(m *methodSpec) rpc.BatchHandler {
	return func(ctx context.Context, calls []rpc.Call) {
		rdb, err := s.client()
		if err != nil {
			for i := range calls {
				calls[i].Err = err
			}
			return
		}
		pipe := rdb.Pipeline()
		finish := make([]finishFunc, len(calls))
		for i := range calls {
			p, keys, err := m.parseCall(calls[i].Params)
			if err == nil {
				finish[i], err = m.queue(ctx, pipe, p, keys)
			}
			calls[i].Err = err
		}
		cmds, err := pipe.Exec(ctx)
		failAll := err != nil && !anyFailed(cmds)
		for i := range calls {
			c := &calls[i]
			if finish[i] != nil {
				c.Err = err
				if !failAll {
					c.Err = finish[i](&c.Reply)
				}
			}
			if c.Err != nil {
				c.Err = s.answerError(ctx, m.name, c.Err)
				continue
			}
			c.Reply.SetOut(m.out)
		}
	}
}

// anyFailed reports whether a command of cmds holds an error. A pipeline
// that failed before sending sets none: its error then fails every command.
func anyFailed(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		if cmd.Err() != nil {
			return true
		}
	}
	return false
}

// Register adds the cache methods to reg: each method of one Redis command as
// a Batch method, whose calls from one loop turn go to Redis as one pipeline,
// and cache.mset as a Blocking method.
func (s *Store) Register(reg *rpc.Registry) {
	for i := range methods {
		m := &methods[i]
		if m.queue != nil {
			reg.RegisterBatch(m.name, s.batchHandler(m))
		} else {
			reg.Register(m.name, rpc.Blocking, s.handler(m))
		}
	}
}
