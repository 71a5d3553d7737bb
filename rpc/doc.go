// Package rpc is the contract between rpcd and the methods it serves: a
// Handler answers one request into a Reply, a BatchHandler answers many at
// once, an AsyncHandler starts calls that it completes later from the event
// loop, and a Registry names handlers and says where each runs. It knows
// nothing of sockets or event loops, so a package of methods builds on every
// OS; package worker serves a Registry on Linux.
//
// # Handlers
//
// A Handler gets the request's params as the exact JSON bytes the client sent
// ("null" when absent), valid only during the call, and sets its answer on
// rep: SetOut names the answer's "out", SetRaw, AppendRaw or SetJSON its
// "result" (null when unset). The server reuses params and rep for other
// requests once the handler returns, so a handler must not keep either.
//
// # Call modes
//
// An Inline handler runs on the worker's event loop goroutine, between reads
// of every connection that worker serves: it must be quick and must never
// block, and its ctx has no deadline. A Blocking handler runs on one of the
// worker's pool goroutines, so it may wait on a database, a file or another
// service; its answer still goes out in its connection's request order. Its
// ctx carries the server's handler deadline: pass ctx on to whatever it waits
// for. At that deadline the client is answered timeout whether or not the
// handler has returned, a result that comes later is dropped, and a call still
// queued at its deadline never runs. When the pool's queue is full a Blocking
// call is answered overloaded without running.
//
// A Batch method does its I/O without a pool goroutine per call. At the end of
// each turn of its event loop a worker hands the calls of that method it read
// in the turn, in the order read, to one BatchHandler call on a goroutine of
// its own, never the loop's. The handler completes each Call by setting its
// Reply, or its Err to fail it, and returns; the answers then go back to the
// loop together and out in each connection's request order. It suits a method
// that can serve many calls with one round trip, such as commands pipelined to
// a database. A worker runs at most one batch of a method at a time: calls
// read meanwhile wait for the next batch, which therefore grows with the load.
// The calls share ctx, which ends at the deadline of the batch's last call.
// Every call keeps its own deadline as a Blocking call does: it is answered
// timeout when it passes, a call still waiting for its batch then never runs,
// and what the handler sets on it later is dropped. When the worker's queue is
// full a call is answered overloaded without running. A handler that panics
// fails every call of its batch with protocol.CodeInternal.
//
// An Async method does its I/O on the worker's event loop itself, with no
// goroutine and no hand-off, the way a proxy drives its upstream connections.
// Its opener (RegisterAsync) is called on each loop that serves it, and the
// handler it returns is called on that loop goroutine at the end of each loop
// turn with the calls of the method read in the turn, in the order read,
// together with the Loop. The handler and every callback it gives the Loop
// (Watch, After, AtClose) run on the loop goroutine, between the reads of
// every connection the worker serves: they must never block, and may make
// only non-blocking system calls on descriptors set non-blocking. A handler
// completes each call exactly once, by setting its Reply or Err and calling
// Done, at once or from a later callback; its answer then goes out in its
// connection's request order. Every call has its own deadline as a Blocking
// call does: it is answered timeout when it passes, and its Done afterwards
// is dropped. A handler that panics fails the calls of that turn it had not
// completed with protocol.CodeInternal; a callback must not panic. State the
// handler keeps for a loop is touched by that loop's goroutine only.
//
// Handlers of every mode may run at the same time as other handlers, so state
// they share must be safe for concurrent use.
//
// # Errors and panics
//
// A handler that returns a *protocol.Error (or an error wrapping one) is
// answered with its code and message: protocol.CodeBadRequest for params it
// cannot take, protocol.CodeUnavailable for a service it needs that is down,
// or a code of its own; so does a Batch call whose Err is set to one. Any other error is answered protocol.CodeInternal with
// the error's text. A handler that panics is answered protocol.CodeInternal,
// the panic is logged, and the worker and the connection carry on. Whatever
// was set on rep is discarded when the handler fails.
//
// # Registering
//
// Register every method before the registry is served; a Registry is read by
// the server's goroutines without locking and must not change while it runs.
// Register panics on a programming error: an empty name, a nil handler, an
// unknown mode or a name registered twice.
package rpc
