// Package cache is rpcd's key-value cache API over a Redis server: the methods
// cache.set, cache.get, cache.del, cache.exists, cache.incr, cache.expire,
// cache.ttl, cache.mget and cache.mset.
//
// Each method but cache.mset is one Redis command and is registered as an
// rpc.Async method, served on the worker's event loop itself: each loop has
// its own non-blocking Redis connection in its epoll set, the commands of the
// calls it reads in one loop turn go out in one write, and the replies, parsed
// as they arrive, answer the calls in the order sent, with no goroutine and no
// hand-off. A call with bad params fails alone and sends nothing. cache.mset,
// an MSET or with a TTL a MULTI/EXEC transaction, is a Blocking method over a
// pool of blocking connections. (Outside Linux, where no worker runs, the
// one-command methods register as rpc.Batch methods over that pool.)
//
// Values are any JSON value. They are stored as the exact bytes the client sent
// and answered as those bytes, so a value comes back byte for byte. A missing
// key is answered null, not as an error. TTLs are in seconds, fractional to the
// millisecond (0.25 is 250ms), from 0.001 to MaxTTL.
//
// Every params shape is checked strictly: a params value that is not the
// method's object, an unknown member or a value of the wrong type answers
// bad_request with the expected shape in the message. The usual shapes are
// read by a scanner over the raw bytes that does not allocate; whatever it
// does not take is decoded by encoding/json, so both read params alike.
//
// Redis being unset or unreachable answers unavailable; Redis not answering
// before the handler's deadline answers timeout. No command is retried, since
// a retried cache.incr could count twice.
//
// A Store is configured once per worker process after it starts (Open, which
// also resolves the address, since a loop must not wait on a lookup); until
// then every method answers unavailable. A connection authenticates
// (-redis-password) and selects its database (-redis-db) first: on a loop's
// connection AUTH and SELECT go ahead of the first commands, and the connect
// must finish within DialTimeout. A loop's connection breaks when Redis sends
// no reply for IOTimeout while some are due, AUTH's and SELECT's included; the worker
// answers timeout at each call's own deadline before that. A connection that
// breaks is closed and every call sent on it answered unavailable; while Redis
// is down, calls answer unavailable at once and a loop connects again at most
// every RetryInterval, so the cache recovers once Redis is back. The pool's
// connections (cache.mset, Ping) dial on demand and bound each exchange by
// IOTimeout and the handler's deadline likewise.
package cache
