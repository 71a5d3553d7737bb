// Package worker runs one rpcd worker: a single epoll event loop over an
// already-open listening socket, dispatching length-prefixed JSON requests to the
// handlers of a Registry. It never spawns processes and reads no flags or
// environment.
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
// An Inline handler runs on the loop and must not block. A Blocking handler runs
// on the offload pool (Config.PoolSize goroutines behind a queue of
// Config.QueueSize); when the queue is full the request is answered with
// overloaded at once. A handler's *protocol.Error is answered as is, any other
// error as internal with its text, and a panic as internal; the worker carries
// on. Answers on a connection go out in request order whatever mode produced
// them.
//
// A Blocking call's ctx carries a deadline Config.HandlerTimeout after its
// request was read. The loop answers timeout at that deadline, in the call's
// place in the order, whether or not the handler has returned; a result that
// comes later is dropped, and a call still queued at its deadline never runs.
// Inline handlers get no deadline: they must not block.
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
// # Shutdown
//
// Shutdown stops accepting, answers every request already read, completes a
// half-received frame, then closes each connection at a frame boundary with a
// lingering close so the client sees a clean end of stream after its last
// answer. A connection accepted just before the drain that has sent nothing
// yet gets its first request answered if it arrives within a second. Anything
// a client sends after the end of stream was not read: a client may safely
// send it again on a new connection. Serve then returns nil.
package worker
