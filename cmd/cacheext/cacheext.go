//go:build linux

// Package cacheext adds the cache.* methods' Redis client to an rpcd binary
// as a cmd.Extension: the -redis, -redis-password and -redis-db flags, and
// a client that each worker process opens when it starts.
package cacheext

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/handlers/cache"
)

// New returns the extension for store, whose methods the program
// registered: each worker process opens store once it starts and closes it
// when it stops. The master never connects.
func New(store *cache.Store) cmd.Extension { return extension{store} }

type extension struct{ store *cache.Store }

// redisFlags are the cache's settings from one parse of rpcd's flags.
type redisFlags struct {
	store    *cache.Store
	addr     string
	password string
	db       int
}

// probeTimeout bounds the worker's startup check that Redis answers.
const probeTimeout = time.Second

func (e extension) Flags(fs *flag.FlagSet) cmd.ExtensionSettings {
	f := &redisFlags{store: e.store}
	fs.StringVar(&f.addr, "redis", "", "`host:port` of the Redis server behind the cache.* methods (empty: they answer unavailable)")
	fs.StringVar(&f.password, "redis-password", "", "password for -redis (AUTH)")
	fs.IntVar(&f.db, "redis-db", 0, "database number for -redis")
	return f
}

func (f *redisFlags) Check() error {
	if f.db < 0 {
		return fmt.Errorf("-redis-db=%d: must not be negative", f.db)
	}
	return nil
}

func (f *redisFlags) Announce(log *zap.Logger) {
	if f.addr == "" {
		log.Info("cache methods answer unavailable: no -redis")
	}
}

// Start opens the store's Redis client. Redis that does not answer yet is
// only a warning: the cache methods answer unavailable until it does.
func (f *redisFlags) Start(w cmd.WorkerInfo) (stop func(), err error) {
	if f.addr == "" {
		return func() {}, nil
	}
	err = f.store.Open(cache.Config{Addr: f.addr, Password: f.password, DB: f.db,
		PoolSize: max(w.PoolSize, cache.DefaultPoolSize)})
	if err != nil {
		w.Log.Warn("cache methods answer unavailable", zap.Error(err))
		return func() {}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if err := f.store.Ping(ctx); err != nil {
		w.Log.Warn("redis does not answer yet; cache methods answer unavailable until it does", zap.Error(err))
	} else {
		w.Log.Info("redis answers", zap.String("redis", f.addr))
	}
	return func() {
		if err := f.store.Close(); err != nil {
			w.Log.Warn("close cache", zap.Error(err))
		}
	}, nil
}
