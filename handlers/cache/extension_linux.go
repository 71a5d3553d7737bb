package cache

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/cmd"
)

// Extension is the cache as a cmd.Extension (on Linux, where cmd runs): it
// adds -redis, -redis-password and -redis-db, and has each worker process
// open store, whose methods the program registered, once it starts, and
// close it when it stops. The master never connects.
func Extension(store *Store) cmd.Extension { return extension{store} }

type extension struct{ store *Store }

// redisFlags are the cache's settings from one parse of rpcd's flags.
type redisFlags struct {
	store    *Store
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
	err = f.store.Open(Config{Addr: f.addr, Password: f.password, DB: f.db,
		PoolSize: max(w.PoolSize, DefaultPoolSize)})
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
