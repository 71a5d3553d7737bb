// Command gnetserver is rpcd's protocol served by gnet v2, the best-known Go
// event-loop library: one loop per CPU (multicore), each with its own
// SO_REUSEPORT listener, and the request handling of goserver (encoding/json
// structs, bench/internal/jsonping).
//
// OnTraffic takes every complete frame the loop has buffered for a connection,
// answers each, and sends the answers to pipelined frames in one write. A zero
// or oversized length is answered with an error frame and the connection is
// closed.
//
// Usage:
//
//	gnetserver [-listen 127.0.0.1:8082] [-byteorder little|big] [-loops N]
package main
