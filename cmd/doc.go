// Package cmd is the rpcd command: it reads flags, decides whether this
// process is the master or one of its workers, and wires protocol, worker and
// master together. It is importable so that a program with its own methods
// can be the same server:
//
//	reg := rpc.NewRegistry()
//	handlers.Register(reg)
//	reg.Register("hello", rpc.Inline, hello)
//	cmd.Main(reg)
//
// An Extension adds flags and a service that each worker process starts
// and stops, as cacheext does with the Redis client behind the
// cache.* methods; Main takes any number of them.
//
// A process reads its role from its environment once, first. The master
// resolves its settings (the command-line flags over the -config file) into
// one value at start, and again on each SIGHUP for the next generation. It
// re-executes the binary at its own path for each worker, with
// master.WorkerSlotEnv set and those settings as flags in the
// RPCD_WORKER_ARGS variable, never on the world-readable command line. A
// worker parses only them and its own command line, which a master leaves
// empty: a worker never reads the file, and serves exactly the methods its
// binary registered.
//
// Like master and worker, cmd builds on Linux only; the packages a method
// or a client imports (rpc, protocol, client, handlers) build everywhere.
package cmd
