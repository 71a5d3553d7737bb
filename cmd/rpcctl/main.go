// Command rpcctl calls an rpcd server from the shell.
//
//	rpcctl call ping '"hi"'
//	rpcctl -addr=127.0.0.1:8080 call cache.get '{"key":"k"}'
//	rpcctl -n 100000 -c 50 call ping '"hi"'
//	rpcctl -addr=etcd://127.0.0.1:2379/rpcd call ping '"hi"'
//
// A single call prints the answer's result JSON on stdout. An error answer
// prints its code and message on stderr and exits 1. With -n, rpcctl makes n
// calls from -c goroutines sharing one client and prints the rate and the
// latency percentiles; it exits 1 if any call failed. Flags may come before or
// after "call".
//
//	rpcctl stats -metrics=127.0.0.1:9100
//	rpcctl stats -metrics=127.0.0.1:9100 -n 3
//
// stats reads the master's /metrics (rpcd -metrics-listen) every -interval and
// prints a table per worker slot, like top: workers, requests and errors per
// second, p50 and p99 latency from the duration histogram, open connections,
// and restarts (workers of the slot that crashed or were killed). With -n it
// prints that many tables and exits; on a terminal each replaces the last.
// A failed scrape, as during an upgrade, is shown in its table's place (it
// counts as one of the -n) and retried at the next interval; with -n, stats
// exits 1 only if every scrape failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rpcd/rpcd/client"
	_ "github.com/rpcd/rpcd/discovery/etcd" // etcd:// targets
	"github.com/rpcd/rpcd/protocol"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	addr      string
	byteOrder string
	timeout   time.Duration
	n, c      int
	conns     int
	method    string
	params    []byte
	stats     bool          // the stats command
	metrics   string        // stats: the master's -metrics-listen address
	interval  time.Duration // stats: time between tables
}

const usage = `Usage: rpcctl [flags] call METHOD [PARAMS-JSON]
       rpcctl stats -metrics=HOST:PORT [-n TABLES] [-interval D]

Flags:
`

func parseArgs(args []string, stderr io.Writer) (*config, error) {
	cfg := new(config)
	fs := flag.NewFlagSet("rpcctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "server `target`: host:port, a list host:port,host:port..., dns:///name:port or etcd://host:port/SERVICE")
	fs.StringVar(&cfg.byteOrder, "byteorder", "little", "byte order of the length prefix: little or big")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "how long each call, and each connect, may take")
	fs.IntVar(&cfg.n, "n", 0, "load test: make this many calls and report rate and latency; stats: print this many tables (0: until interrupted)")
	fs.IntVar(&cfg.c, "c", 10, "load test: concurrent callers")
	fs.IntVar(&cfg.conns, "conns", 0, "connections the callers share (default: min(c, 8))")
	fs.StringVar(&cfg.metrics, "metrics", "", "stats: `host:port` of the master's metrics endpoint (rpcd -metrics-listen)")
	fs.DurationVar(&cfg.interval, "interval", time.Second, "stats: time between tables")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "call" && fs.Arg(0) != "stats" {
		fs.Usage()
		return nil, errors.New(`want "call METHOD [PARAMS]" or "stats"`)
	}
	cfg.stats = fs.Arg(0) == "stats"
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return nil, err
	}
	if cfg.stats {
		return cfg, checkStats(cfg, fs.NArg())
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return nil, errors.New(`want "call METHOD [PARAMS]"`)
	}
	cfg.method = rest[0]
	if len(rest) == 2 {
		cfg.params = []byte(rest[1])
	}
	if cfg.n < 0 || cfg.c < 1 || cfg.timeout <= 0 {
		return nil, errors.New("-n must not be negative, -c and -timeout must be positive")
	}
	if cfg.conns <= 0 {
		cfg.conns = min(cfg.c, 8)
	}
	return cfg, nil
}

func checkStats(cfg *config, args int) error {
	switch {
	case args > 0:
		return errors.New(`"stats" takes flags only`)
	case cfg.metrics == "":
		return errors.New("stats: want -metrics=HOST:PORT")
	case cfg.n < 0 || cfg.interval <= 0 || cfg.timeout <= 0:
		return errors.New("-n must not be negative, -interval and -timeout must be positive")
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rpcctl: %v\n", err)
		return 2
	}
	if cfg.stats {
		return stats(cfg, stdout, stderr)
	}
	order, err := protocol.ParseByteOrder(cfg.byteOrder)
	if err != nil {
		fmt.Fprintf(stderr, "rpcctl: -byteorder: %v\n", err)
		return 2
	}
	c, err := client.Dial(cfg.addr, client.Options{
		ByteOrder: order, Conns: cfg.conns, Timeout: cfg.timeout, DialTimeout: cfg.timeout,
		ProbeTimeout: cfg.timeout, // the hello on each new connection too
	})
	if err != nil {
		fmt.Fprintf(stderr, "rpcctl: %v\n", err)
		return 1
	}
	defer c.Close()
	if cfg.n > 0 {
		return loadTest(c, cfg, stdout, stderr)
	}
	return callOnce(c, cfg, stdout, stderr)
}

func callOnce(c *client.Client, cfg *config, stdout, stderr io.Writer) int {
	_, result, err := c.Call(context.Background(), cfg.method, cfg.params)
	var answer *client.Error
	switch {
	case errors.As(err, &answer):
		fmt.Fprintf(stderr, "%s: %s\n", answer.Code, answer.Message)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "rpcctl: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", result)
	return 0
}
