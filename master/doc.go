// Package master runs the rpcd master process: it binds the listening
// sockets, starts the worker processes, supervises them, replaces them
// generation by generation, and stops them. It runs on Linux only.
//
// # Sockets
//
// The master binds one SO_REUSEPORT listening socket per worker slot, all on
// the same address, and keeps each open while its slot exists. A worker that
// crashes or is replaced therefore never takes its socket with it:
// connections queued on the socket wait for the next worker of that slot.
// The master keeps its copies as bare descriptors, away from the runtime
// poller and os.File, whose Fd would clear the O_NONBLOCK flag the workers
// share.
//
// # Worker processes
//
// A worker is a re-exec of Config.Path with its Generation's Args and Env,
// plus WorkerSlotEnv=<slot>; the master passes them on without looking
// inside. Settings that may hold a
// secret belong in Env, which only the owner can read in /proc, not in Args.
// It inherits two descriptors, three with Config.Metrics:
//
//   - ListenFD: the slot's listening socket.
//   - StatusFD: the write end of its status pipe, which it keeps open. It
//     writes StatusReady once it accepts connections, then StatusHeartbeat
//     at least once a second while its event loop turns, or StatusRecycle
//     instead when it wants to be replaced.
//   - MetricsFD: the shared counters (package metrics), with the number
//     of its own block in MetricsBlockEnv. The master folds the block into
//     its slot's totals once it has reaped the worker, and hands the region
//     over across an upgrade.
//
// A worker drains and exits on SIGTERM; on RetireSignal it first accepts
// what is queued on its socket (its copy is the last one); on ReopenSignal
// it reopens its log. It must notice on its own when the master has died.
//
// # Generations
//
// Every worker belongs to a generation. A reload starts a whole new
// generation beside the running one and waits for each new worker's
// StatusReady (a handshake, not a timer): only then are the old workers
// told to drain, and each gets SIGKILL if it has not exited within
// Generation.DrainTimeout. New workers of a slot that lives on inherit the same
// socket, so nothing queued on it is lost. If a new worker exits or is not
// ready within Generation.StartTimeout, the whole new generation is killed and
// the running one carries on. A changed address is bound before the new
// generation starts; the old sockets close as their slots retire. A stop
// that begins during a rollout stops the new generation with the old one,
// and the rollout no longer completes.
//
// Removing a slot must not reset the connections queued on its socket,
// which Linux does when the last copy of a SO_REUSEPORT socket closes unless
// net.ipv4.tcp_migrate_req=1. The master closes its copy and, without that
// sysctl, sends the slot's worker RetireSignal: it accepts until the queue
// is empty, closes the socket and ends what it accepted at a frame boundary.
// A connection that completes its handshake in the microseconds between the
// last accept and the close is still reset; only the sysctl (or an eBPF
// reuseport program) closes that window.
//
// # Supervision
//
// The master reaps every child of the process (wait4 on any pid), its own
// upgrade check run included, so it must be the only code in the process
// that waits for children, and only one Master may run per process. A
// serving worker that exits is replaced in its slot after a per-slot
// exponential backoff; a worker that sends no status byte for
// Generation.WorkerTimeout is sent SIGABRT, so that a Go worker run with
// GOTRACEBACK=crash writes its goroutines' stacks to its stderr as it dies,
// then SIGKILL if it still runs abortGrace (2s) later, and is replaced; a
// worker asking to be recycled gets a replacement first and drains once it
// is ready. Run
// fails only when no worker can start at all: every slot failed several
// times in a row before any worker ever became ready. Crashes after that
// never stop the master.
//
// # The loop
//
// One goroutine runs the master. Its events (a signal, a status byte, a
// worker's exit, a timer) only update the state and record what they ask
// for. Once per turn, step then acts on the requests and on what the state
// and the clock make due, in a fixed order; one function (waits) decides
// which requests wait for a rollout. Nothing it does blocks: the upgrade's
// check run is a child like the workers, reaped by the same wait4, its
// output and its exit come back as events, and it is killed at its
// deadline.
//
// # Signals
//
// One table (signalActions) maps signals to actions:
//
//   - SIGTERM, SIGINT, SIGQUIT: stop gracefully. Every worker gets SIGTERM,
//     stragglers SIGKILL after Generation.ShutdownTimeout; Run returns nil.
//   - SIGHUP: reload. Config.Reload supplies the next Generation; an
//     error is logged and changes nothing. Otherwise a new generation rolls
//     out, with a changed worker count or address applied; a changed
//     address is logged at warn, with the old and the new one.
//   - SIGUSR2: upgrade in place. The binary at Path must pass a run with
//     Config.CheckArgs within 10s, during which the master supervises as
//     usual; then the master clears close-on-exec on the sockets
//     and status pipes (and Config.PidFile, whose lock goes with its
//     descriptor), describes them and its workers in InheritEnv, and
//     execs itself, keeping its pid (so its workers keep their parent). The
//     new image adopts them (Config.Inherited, InheritedPidFile) and rolls
//     out a new generation; if that fails, the adopted workers keep serving.
//   - SIGTTIN, SIGTTOU: one slot more, one slot fewer (never below one),
//     for each one read. A reload applies the configured count again.
//   - SIGUSR1: Config.Reopen, then ReopenSignal to every ready worker.
//
// Reload, upgrade and scaling that arrive while a generation is rolling out
// wait for it to finish; a reload or an upgrade that arrives while a new
// binary is checked waits for the check, and goes to the new image if that
// runs. Repeated requests merge into one, except SIGTTIN and SIGTTOU, each
// of which counts. Master.Signal feeds a signal through the same path.
//
// No signal that reaches the channel is lost: it buffers far more than a
// burst. But the kernel merges a standard signal with a repeat sent while
// it is pending, and the Go runtime merges it with one not yet read by
// os/signal, so identical signals sent in a quick burst may count once.
// For an exact worker count, set Generation.Workers and reload.
//
// A process that will run a Master calls CatchSignals first thing and
// passes the channel in Config.Signals: a signal that arrives while it
// starts up is then acted on once Run starts, instead of killing it. Across
// an upgrade, the signals not yet read when the check has passed are handed
// to the new image, which acts on them (a stop among them cancels the
// upgrade); SIGHUP and SIGINT are ignored
// from just before the exec until the new image catches them, and the other
// signals the Go runtime resets, so only a stop signal in the new image's
// first moments (before its main runs) can still kill it.
//
// # Hooks
//
// OnReady, OnStopping, OnReloading and OnReloaded report the master's state
// changes, as a service manager wants them (sd_notify READY=1, STOPPING=1,
// RELOADING=1): ready once every slot's first worker is ready; stopping when
// a graceful stop begins; reloading when a reload or an upgraded image's
// rollout begins, and reloaded when it has ended either way. OnWorkers gives
// the slot count on ready and each time it changes after, for a service
// registry.
//
// A registry also wants a stop to be known before the workers drain:
// Config.StopDelay holds SIGTERM back that long after OnStopping (a timed
// step, within the shutdown timeout), or until the channel Hooks.HoldStop
// returned closes if that comes first (an event of the loop), and
// Config.UpgradeEnv adds to the
// environment of the image an upgrade executes what it needs to carry on,
// such as a lease.
package master
