package cmd

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/handlers/cache"
)

// Option adds to what Main runs.
type Option func(*extras)

// extras are what a program's Options asked for.
type extras struct {
	cache *cache.Store
}

func newExtras(ext []Option) *extras {
	e := new(extras)
	for _, opt := range ext {
		opt(e)
	}
	return e
}

// WithCache has each worker process connect store, whose methods the program
// registered, to the Redis server named by -redis once the worker starts, and
// close it when the worker stops. The master never connects.
func WithCache(store *cache.Store) Option {
	return func(e *extras) { e.cache = store }
}

// cacheProbe bounds the startup check that Redis answers.
const cacheProbe = time.Second

// openCache opens the cache's Redis client as configured and returns what
// closes it. Redis that does not answer yet is only a warning: the cache
// methods answer unavailable until it does.
func (e *extras) openCache(opts *options, log *zap.Logger) func() {
	switch {
	case e.cache == nil && opts.redis != "":
		log.Warn("-redis is set but this binary has no cache methods", zap.String("redis", opts.redis))
		return func() {}
	case e.cache == nil:
		return func() {}
	case opts.redis == "":
		log.Info("cache methods answer unavailable: no -redis")
		return func() {}
	}
	err := e.cache.Open(cache.Config{Addr: opts.redis, Password: opts.redisPassword, DB: opts.redisDB,
		PoolSize: max(opts.poolSize, cache.DefaultPoolSize)})
	if err != nil {
		log.Warn("cache methods answer unavailable", zap.Error(err))
		return func() {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cacheProbe)
	defer cancel()
	if err := e.cache.Ping(ctx); err != nil {
		log.Warn("redis does not answer yet; cache methods answer unavailable until it does", zap.Error(err))
	} else {
		log.Info("redis answers", zap.String("redis", opts.redis))
	}
	return func() {
		if err := e.cache.Close(); err != nil {
			log.Warn("close cache", zap.Error(err))
		}
	}
}
