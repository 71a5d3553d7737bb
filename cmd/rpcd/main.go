//go:build linux

// Command rpcd is the prefork RPC server with the built-in methods ping, fib
// and pi, and the cache.* methods over the Redis named by -redis. Run `rpcd -h`
// for its flags.
package main

import (
	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/cmd/cacheext"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/handlers/cache"
	"github.com/rpcd/rpcd/rpc"
)

func main() {
	store := cache.New()
	cmd.Main(registry(store), cacheext.New(store))
}

func registry(store *cache.Store) *rpc.Registry {
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	store.Register(reg)
	return reg
}
