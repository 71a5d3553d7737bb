// Command goserver is the comparison baseline for rpcd: the server most Go
// programmers would write for the same protocol, with one goroutine per
// connection, the standard net and bufio packages, and encoding/json.
//
// It reads frames (a 4-byte length, little-endian unless -byteorder big, then the
// JSON body), decodes {"in","params"} and answers ping with
// {"out":"pong","result":<params>}; any other method gets the rpcd error envelope
// {"out":"error","result":{"code":"unknown_method",...}}. Answers are buffered and
// flushed once no further request is already buffered, so pipelined answers leave
// in one write. A zero or oversized length is answered with an error frame and the
// connection is closed.
//
// Usage:
//
//	goserver [-listen 127.0.0.1:8081] [-byteorder little|big]
package main
