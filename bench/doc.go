// Package bench measures rpcd against the alternatives. It is a module of its
// own so that their dependencies stay out of rpcd's go.mod:
//
//   - goserver: the protocol with one goroutine per connection (net, bufio,
//     encoding/json), the server most Go programs would be;
//   - gnetserver: the same handling on gnet v2's event loops;
//   - internal/jsonping: the request handling those two share;
//   - jsoncmp: benchmarks of rpcd's envelope scanner against encoding/json and
//     goccy/go-json;
//   - suite: runs rpcd, goserver, gnetserver and redis-server side by side with
//     cmd/rpcbench and writes docs/benchmarks.md's table and chart.
//
// From this directory:
//
//	go run ./suite
package bench
