// Package worker runs one rpcd worker: a single epoll event loop over an
// already-open listening socket, dispatching length-prefixed JSON requests to the
// handlers of an rpc.Registry. It never spawns processes and reads no flags or
// environment. It builds on Linux only.
//
// # Loop
//
// Serve owns one level-triggered epoll instance. Connections are plain
// non-blocking descriptors indexed by number; there is no net.Conn and no
// goroutine per connection. Every connection shares the loop's read buffer and
// output buffer; a connection keeps bytes of its own only while a frame is half
// received or the socket would not take all of its answers, so an idle
// connection costs a small struct.
//
// # Handlers
//
// A worker serves an rpc.Registry, under the contract package rpc states:
// Inline handlers run on the loop goroutine, Blocking ones on the offload pool
// (Config.PoolSize goroutines behind a queue of Config.QueueSize, overloaded
// when it is full; each on a thread of its own at nice 10 with a 100 µs time
// slice, so that blocking work saturating the CPUs delays the loop less)
// under a deadline Config.HandlerTimeout after their request was read. The
// loop waits for a Go processor when pool goroutines hold every one, so a
// process running a worker should have more processors (GOMAXPROCS) than
// busy pool goroutines; rpcd's cmd adds one. The loop answers timeout at that
// deadline, in the call's place in the order. The calls of a Batch method read in one loop turn start
// as one batch on a goroutine of their own at the end of the turn, one batch
// per method at a time, under the same deadlines and the same queue bound
// (Config.QueueSize calls waiting per method); their answers come back through
// the same wake-up as pooled ones. The calls of an Async method read in one
// loop turn go to its handler on the loop goroutine at the end of the turn,
// under the same deadlines and queue bound; the worker is its rpc.Loop (the
// descriptors it watches sit in the worker's epoll set, its timers run on the
// loop clock), and a call's Done files its answer on the loop with no wake-up.
// Answers on a connection go out in request order whatever mode produced them.
//
// # Errors and limits
//
// A framing error (zero length, or a length over Config.MaxFrame) is answered
// with an error frame and ends the connection; a bad request body or an unknown
// method only fails that request. Reading from a connection pauses while its
// unsent answers exceed Config.MaxPending, so a client that never reads costs
// bounded memory. Config.IdleTimeout closes quiet connections and
// Config.ReadTimeout drops connections that leave a frame half sent, and
// Config.WriteTimeout those that stop reading their answers.
//
// At Config.MaxConns open connections the worker stops accepting, leaving new
// ones in the listener's queue, until one closes; it logs that once, until
// fewer than 90 % of the limit are open. Config.MaxBuffer bounds
// the memory held for all connections, half-received frames and unsent
// answers, with the buffers kept for reuse and a share left for garbage:
// near it, connections at a frame boundary are not read, and those holding
// the most unsent answers are dropped once a second until such answers
// cannot keep the pause on; past it, those holding the most are dropped. A drop for the budget or for WriteTimeout
// resets the connection and is logged at info, rate-limited.
//
// # Shutdown
//
// Shutdown stops accepting, answers every request already read, completes a
// half-received frame, then closes each connection at a frame boundary with a
// lingering close so the client sees a clean end of stream after its last
// answer. A connection accepted just before the drain that has sent nothing
// yet gets its first request answered if it arrives within a second. Anything
// a client sends after the end of stream was not read: a client may safely
// send it again on a new connection. Serve then returns nil. A connection
// that called rpcd.hello first gets a goodbye frame before any graceful close
// (drain, idle timeout, framing error), which proves it.
package worker
