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
// The master re-executes the binary at its own path for each worker, with
// master.WorkerSlotEnv set and the resolved settings (the -config file with
// the command-line flags over it) as flags in the RPCD_WORKER_ARGS variable,
// never on the world-readable command line, so a worker never reads the file
// and serves exactly the methods its binary registered. On SIGHUP the master
// resolves the settings again for the next generation.
package cmd
