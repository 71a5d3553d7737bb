package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the suite's settings, one field per flag.
type options struct {
	root     string
	docs     string
	duration time.Duration
	warmup   time.Duration
	repeat   int
	conns    int
	depths   []int
	servers  []string
	idle     int
	workers  int
	params   string
	// cacheConns is the connection count of the cache runs (0 skips them);
	// cacheRedis the address of their redis-server, once started.
	cacheConns int
	cacheRedis string
	// blockingConns is the connection count of the fib load of the
	// blocking runs (0 skips them).
	blockingConns int
}

func parseOptions(args []string) (options, error) {
	var o options
	var depths, servers string
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.StringVar(&o.root, "root", "..", "rpcd's repository root (where cmd/rpcd is)")
	fs.StringVar(&o.docs, "docs", "../docs", "directory that receives benchmarks.md and benchmarks.png")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "measured time per load run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each run")
	fs.IntVar(&o.repeat, "repeat", 3, "runs per server and depth; the table shows medians")
	fs.IntVar(&o.conns, "conns", 100, "connections per load run")
	fs.StringVar(&depths, "depths", "1,32", "pipeline depths, comma-separated")
	fs.StringVar(&servers, "servers", strings.Join(allServers, ","), "servers to compare, comma-separated")
	fs.IntVar(&o.idle, "idle", 10000, "connections for the idle memory test (0 skips it)")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "rpcd worker processes")
	fs.StringVar(&o.params, "params", `"ireader 0"`, "ping params (JSON)")
	fs.IntVar(&o.cacheConns, "cache-conns", 50, "connections per cache run, one request in flight each (0 skips the cache runs)")
	fs.IntVar(&o.blockingConns, "blocking-conns", 50, "connections of the fib load under which ping's tail is measured (0 skips the blocking runs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, d := range strings.Split(depths, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-depths: %q is not a positive integer", d)
		}
		o.depths = append(o.depths, n)
	}
	for _, s := range strings.Split(servers, ",") {
		if _, ok := serverKinds[s]; !ok {
			return o, fmt.Errorf("-servers: unknown server %q (want %s)", s, strings.Join(allServers, ", "))
		}
		o.servers = append(o.servers, s)
	}
	if o.repeat < 1 || o.conns < 1 || o.idle < 0 || o.cacheConns < 0 || o.blockingConns < 0 {
		return o, errors.New("-repeat and -conns must be at least 1, -idle, -cache-conns and -blocking-conns not negative")
	}
	return o, nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("suite: ")
	o, err := parseOptions(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run builds everything, measures, and writes the results.
func run(ctx context.Context, o options) error {
	if err := raiseFileLimit(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "rpcd-suite-")
	if err != nil {
		return fmt.Errorf("make work directory: %w", err)
	}
	defer os.RemoveAll(work)
	bins, err := build(o, work)
	if err != nil {
		return err
	}
	res := &results{opts: o, started: time.Now()}
	if err := measureLoad(ctx, o, bins, work, res); err != nil {
		return err
	}
	if o.cacheConns > 0 {
		if err := measureCache(ctx, o, bins, work, res); err != nil {
			return err
		}
	}
	if o.blockingConns > 0 {
		if err := measureBlocking(ctx, o, bins, work, res); err != nil {
			return err
		}
	}
	if o.idle > 0 {
		if err := measureIdle(ctx, o, bins, work, res); err != nil {
			return err
		}
	}
	return publish(o, res, filepath.Clean(o.docs))
}

// raiseFileLimit lifts this process's descriptor limit to its hard limit, for
// the idle test's connections. Servers inherit it: it is the ulimit they run with.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read descriptor limit: %w", os.NewSyscallError("getrlimit", err))
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise descriptor limit: %w", os.NewSyscallError("setrlimit", err))
	}
	return nil
}
