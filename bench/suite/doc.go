// Command suite runs rpcd and the servers it is compared against side by side,
// with the same client (cmd/rpcbench) and the same frames, and publishes the
// result: a markdown table in docs/benchmarks.md and a chart next to it.
//
// The servers are rpcd (one worker per CPU), rpcd-1w (one worker, like
// single-threaded redis), goserver (a goroutine per connection), gnetserver (gnet v2, multicore, reuseport) and redis-server
// answering PING over RESP, this machine's reference for a tuned C epoll loop.
// Each load run is rpcbench with -pid, so the server's CPU time per request is
// summed from /proc over every process of the server. Runs alternate between
// servers, repeat, and the table shows medians. Nothing is pinned to CPUs.
//
// Cache runs put two rpcds (-redis; -workers workers, and one) in front of a
// redis-server of their own and compare, at -cache-conns connections, rpcd's
// ping, cache.set and cache.get (rpcbench) with redis-benchmark's SET and GET
// at -P 1 and -P 16 against the same redis-server, with each side's CPU per
// request from /proc (for rpcd's rows, rpcbench -backend-pid counts Redis over
// the measured window). A row of rpcbench -redis (PING) straight at the same
// redis-server shows what Redis does for the rpcd rows' own load generator.
// Each load runs once a round, in the table's order (rpcd's cache.set and
// cache.get right before redis-benchmark's SET and GET at -P 1), and the table
// adds rpcd's rate ratios to the direct loads of the same round, and their
// medians.
//
// Blocking runs measure ping's p99 on 10 connections alone and then while
// fib(100000) on -blocking-conns others keeps every worker's pool busy, round
// by round, with each round's ratio and the medians.
//
// Idle memory opens many connections to a freshly started server, has each send
// one ping and read the answer, and divides the growth of the resident memory of
// all the server's processes (VmRSS from /proc) by the number of connections.
//
// From the bench directory:
//
//	go run ./suite                  # full run; rewrites docs/benchmarks.md's table and chart
//	go run ./suite -d 1s -repeat 1 -conns 10 -idle 200 -docs "$(mktemp -d)"   # smoke run
package main
