// Package cache is rpcd's key-value cache API over a Redis server: the methods
// cache.set, cache.get, cache.del, cache.exists, cache.incr, cache.expire,
// cache.ttl, cache.mget and cache.mset.
//
// Each method but cache.mset is one Redis command and is registered as an
// rpc.Batch method: the calls a worker reads in one loop turn go to Redis as
// one pipeline, one write for the lot and their replies parsed from buffered
// reads, and each is answered from its own reply. A call with bad params fails
// alone and sends nothing. cache.mset, an MSET or with a TTL a MULTI/EXEC
// transaction, is a Blocking method.
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
// A Store holds a pool of Redis connections (package resp). Each worker
// process opens its own after it starts (Open), and the handlers reach Redis
// only through it; until Open is called every method answers unavailable. A
// connection authenticates (-redis-password) and selects its database
// (-redis-db) when it is dialled, within DialTimeout; each exchange's write
// and reads are bounded by IOTimeout and the handler's deadline. A connection
// that fails is closed and its calls answered; the next call dials again, so
// the cache recovers once Redis is back.
package cache
