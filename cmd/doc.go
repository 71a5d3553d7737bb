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
// binary registered. Workers run with GOTRACEBACK=crash, so that the
// master's SIGABRT to a hung worker leaves every thread's goroutine stack
// in the worker's stderr, and without core files unless the master's own
// GOTRACEBACK=crash asks for them.
//
// A -config file that sets nothing is an error, and -listen must parse,
// have a port in range and a host that resolves: at start, on SIGHUP
// (where the running generation carries on) and with -t, which checks all
// that a start checks short of binding.
//
// A master with -pidfile holds the file locked (flock) for its whole life,
// handing the locked descriptor to the new image across an upgrade; a
// second master on the file refuses to start, and -s signals the pid in it
// only while a master holds the lock.
//
// With -registry, the master registers its host in etcd (package registry)
// through the master's hooks: once ready, again in place on each change of
// the worker count and each reload, revoked when a stop begins, with the
// workers' SIGTERM held back by -deregister-delay (master.Config.StopDelay);
// an upgrade hands the lease to the new image in RPCD_REGISTRY_LEASE
// (master.Config.UpgradeEnv). Workers never register and never get that
// variable.
//
// Like master and worker, cmd builds on Linux only; the packages a method
// or a client imports (rpc, protocol, client, handlers) build everywhere.
package cmd
