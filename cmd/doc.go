// Package cmd is the rpcd command: it reads flags, decides whether this
// process is the master or one of its workers, and wires protocol, worker and
// master together. It is importable so that a program with its own methods
// can be the same server:
//
//	reg := worker.NewRegistry()
//	handlers.Register(reg)
//	reg.Register("hello", worker.Inline, hello)
//	cmd.Main(reg)
//
// The master re-executes the running binary for each worker, with the same
// arguments and master.WorkerSlotEnv set, so both roles parse the same flags
// and a worker serves exactly the methods its master's binary registered.
package cmd
