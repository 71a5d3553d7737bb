// Package client is a Go client for rpcd's protocol, over one server or many.
//
//	c, err := client.New("10.0.0.2:8080,10.0.0.3:8080", client.Options{})
//	out, result, err := c.Call(ctx, "cache.get", []byte(`{"key":"k"}`))
//
// A Client is safe for use by many goroutines. Its target is one host:port, a
// comma-separated list, dns:///name:port, or any scheme registered with
// package discovery (etcd://host:port/SERVICE once discovery/etcd is
// imported); Options.Resolver supplies endpoints any other way. New never
// fails for want of endpoints: calls wait for one up to their deadline. Dial
// also opens one connection at once, so that an unreachable server is
// reported there.
//
// Each call goes to the lighter of two endpoints picked at random, by calls
// in flight per unit of weight, and inside it to the lighter of two of its
// connections (Options.Conns): a connection answers in request order, so a
// slow call holds up the calls behind it. Requests are pipelined, and a
// call's answer is the next one its connection returns.
//
// A call ends at its context's deadline or cancellation, or after
// Options.Timeout when the context has none. Its answer is still read and
// discarded when it arrives, so the answers after it stay matched.
//
// Every new connection first calls rpcd.hello. A server that knows it sends a
// goodbye frame before closing the connection gracefully, which proves that
// the requests still unanswered were not read; they go to another endpoint,
// Idempotent or not. A connection lost without a goodbye may have run what it
// carried: such a call fails with an error wrapping ErrMaybeSent, unless it
// is Idempotent and the retry budget allows another attempt.
//
// An endpoint whose dial is refused or times out, or that loses connections
// repeatedly, is ejected for a jittered, growing backoff, and comes back once
// a ping on a fresh connection succeeds; never more than half of the
// endpoints are ejected, and never the last one. An endpoint that leaves
// calls unanswered for Options.StallAfter is pinged, and ejected if the ping
// fails. Redials after a failed dial back off with jitter.
package client
