// Package master runs the rpcd master process: it binds the listening
// sockets, starts the worker processes, supervises them and stops them.
//
// # Sockets
//
// The master binds one SO_REUSEPORT listening socket per worker slot, all on
// the same address, and keeps every one of them open until Run returns. A
// worker that crashes or is replaced therefore never takes its socket with
// it: connections queued on the socket wait for the next worker of that slot.
//
// # Worker processes
//
// A worker is a re-exec of Config.Path with Config.Args and Config.Env, plus
// WorkerSlotEnv=<slot>. It inherits two descriptors:
//
//   - ListenFD: the slot's listening socket. Its O_NONBLOCK flag is shared
//     with the master's copy; the worker sets it to suit itself.
//   - ReadyFD: the write end of a pipe. The worker writes one byte once it
//     accepts connections, then closes it. A worker whose pipe reaches EOF
//     first never became ready.
//
// A worker must exit on SIGTERM after a graceful drain, and must notice on its
// own when the master has died; the master sets no parent-death signal.
//
// # Supervision
//
// The master reaps every child of the process (wait4 on any pid), so it must
// be the only code in the process that waits for children, and only one
// Master may run per process. A worker that exits while the master is not
// stopping is replaced in its slot after a per-slot exponential backoff. Run
// fails only when no worker can start at all: every slot failed several times
// in a row before any worker ever became ready.
//
// # Signals
//
// SIGTERM, SIGINT and SIGQUIT stop the master gracefully: every worker gets
// SIGTERM, stragglers get SIGKILL after Config.ShutdownTimeout, and Run
// returns nil once all have been reaped. SIGHUP is caught and ignored for now.
// Master.Signal feeds a signal through the same path.
package master
