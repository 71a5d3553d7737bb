// Command rpcbench drives load at an rpcd-protocol server and reports throughput,
// latency and, given the server's pid, the server CPU time spent per request.
//
// Usage:
//
//	rpcbench -addr 127.0.0.1:8080 -c CONNS -depth PIPELINE -d DURATION \
//	    -in METHOD -params JSON [-byteorder little|big] [-pid PID] [-backend-pid PID] [-json] \
//	    [-warmup DUR] [-n TOTAL] [-redis]
//
// Each of the CONNS connections keeps PIPELINE requests outstanding: it writes
// requests until PIPELINE are in flight (one write for the batch), waits for one
// answer, takes any further answers that arrived in the same read, and tops the
// window up again. Depth 1 is a plain request/answer loop.
//
// Latency runs from the write that carried a request to the read that brought its
// answer. The run lasts -d (after an unmeasured -warmup), or stops earlier once -n
// measured requests were issued; -d 0 with -n > 0 runs until -n are done. The
// params are compacted before sending so any server echoes them byte for byte.
//
// Every answer is checked: "error" answers are counted by code, and for ping the out
// must be "pong" and the result must equal the params sent, otherwise it counts as a
// mismatch. Connection failures (refused, reset, EOF with requests outstanding) are
// counted by kind; the connection is re-established a bounded number of times and
// the requests it had in flight are reported as lost.
//
// With -pid, the CPU time of that process and its direct children (the workers of a
// prefork server), including children that exited and were reaped, is sampled from
// /proc at both ends of the measured window and divided by the requests answered.
// -backend-pid does the same for a process behind the server, such as the
// Redis an rpcd's cache methods use, over the same window.
//
// With -redis, rpcbench speaks the Redis protocol instead: each request is the
// PING command, and each answer must be +PONG. This measures a Redis server (or
// anything speaking RESP) with the same connections, pipelining, latency and CPU
// accounting, as a reference point for a tuned C event loop.
//
// Exit status: 0 when every answer was right and no connection failed, 1 otherwise,
// 2 for bad arguments.
package main
