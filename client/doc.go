// Package client is a Go client for rpcd's protocol.
//
//	c, err := client.Dial("127.0.0.1:8080", client.Options{})
//	out, result, err := c.Call(ctx, "cache.get", []byte(`{"key":"k"}`))
//
// A Client is safe for use by many goroutines. It pipelines requests over a
// small pool of connections (Options.Conns): each call is written to one
// connection and its answer is the next one that connection returns, since the
// server answers in request order. An error answer is returned as a
// *protocol.Error (client.Error is the same type) carrying the server's code.
//
// A call ends at its context's deadline or cancellation, or after
// Options.Timeout when the context has none. Its answer is still read and
// discarded when it arrives, so the answers after it stay matched.
//
// A connection the server closed is replaced by the next call that picks it.
// A request is never sent twice unless the call is marked Idempotent: when a
// connection fails after a request was written in full, the server may have
// read and run it, and the call fails with an error wrapping ErrMaybeSent. A
// request that was not written in full, or that found its connection already
// closed, is sent on a new connection.
package client
