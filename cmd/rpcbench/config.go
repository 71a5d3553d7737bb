package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/protocol"
)

// config is a validated command line.
type config struct {
	addr      string
	conns     int
	depth     int
	duration  time.Duration // 0: no time limit (only with total > 0)
	warmup    time.Duration
	total     int64 // measured requests to issue; 0: no limit
	method    string
	params    []byte // compact JSON
	byteOrder protocol.ByteOrder
	pid       int // server pid to account CPU for; 0: none
	backend   int // pid of a process behind the server to account CPU for; 0: none
	json      bool
	redis     bool // speak RESP and send PING instead of rpcd frames
}

// errFlagsReported marks a flag error that the flag package already printed,
// together with the usage, to the output given to parseArgs.
var errFlagsReported = errors.New("invalid flags")

// parseArgs parses and validates the command line; any error is a usage error.
// -h gives flag.ErrHelp.
func parseArgs(args []string, output io.Writer) (config, error) {
	var cfg config
	var params, byteOrder string
	fs := flag.NewFlagSet("rpcbench", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "server `target`: host:port, host:port,host:port..., dns:///name:port or etcd://host:port/SERVICE; the connections are spread over the endpoints by weight")
	fs.IntVar(&cfg.conns, "c", 10, "number of connections")
	fs.IntVar(&cfg.depth, "depth", 1, "requests kept outstanding per connection")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "measured duration (0: until -n requests)")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "unmeasured load before the measured window")
	fs.Int64Var(&cfg.total, "n", 0, "stop after this many measured requests (0: no limit)")
	fs.StringVar(&cfg.method, "in", "ping", "method to call")
	fs.StringVar(&params, "params", `"hello"`, "params as JSON")
	fs.StringVar(&byteOrder, "byteorder", "little", "frame length byte order: little or big")
	fs.IntVar(&cfg.pid, "pid", 0, "server pid whose CPU time (and its children's) is reported")
	fs.IntVar(&cfg.backend, "backend-pid", 0, "pid of a process behind the server, such as its Redis, whose CPU time (and its children's) over the same window is reported too")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object instead of text")
	fs.BoolVar(&cfg.redis, "redis", false, "send the Redis PING command (RESP) and expect +PONG; -in and -params are ignored")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return config{}, err
	} else if err != nil {
		return config{}, fmt.Errorf("%w: %w", errFlagsReported, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	order, err := protocol.ParseByteOrder(byteOrder)
	if err != nil {
		return config{}, fmt.Errorf("-byteorder: %w", err)
	}
	cfg.byteOrder = order
	if cfg.params, err = compactJSON(params); err != nil {
		return config{}, fmt.Errorf("-params: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	if cfg.redis {
		cfg.method, cfg.params = "PING", nil
	}
	return cfg, nil
}

// validate checks the ranges and combinations that flag parsing cannot.
func (c *config) validate() error {
	if _, err := discovery.ParseTarget(c.addr); err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	switch {
	case c.conns < 1:
		return fmt.Errorf("-c must be at least 1, got %d", c.conns)
	case c.depth < 1:
		return fmt.Errorf("-depth must be at least 1, got %d", c.depth)
	case c.duration < 0:
		return fmt.Errorf("-d must not be negative, got %v", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("-warmup must not be negative, got %v", c.warmup)
	case c.total < 0:
		return fmt.Errorf("-n must not be negative, got %d", c.total)
	case c.duration == 0 && c.total == 0:
		return errors.New("-d 0 needs -n to bound the run")
	case c.method == "":
		return errors.New("-in must name a method")
	case c.pid < 0:
		return fmt.Errorf("-pid must be positive, got %d", c.pid)
	case c.backend < 0:
		return fmt.Errorf("-backend-pid must be positive, got %d", c.backend)
	}
	return nil
}

// compactJSON validates s as one JSON value and strips insignificant whitespace,
// the form in which servers echo params back.
func compactJSON(s string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, fmt.Errorf("parse %q as JSON: %w", s, err)
	}
	return buf.Bytes(), nil
}
