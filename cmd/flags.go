//go:build linux

package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/worker"
)

// options are the command's built-in settings, one field per flag; an
// Extension holds its own.
type options struct {
	listen          string
	workers         int
	byteOrder       string
	maxFrame        byteSize
	idleTimeout     time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	cpuProfileDir   string
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
	version         bool
	handlerTimeout  time.Duration
	poolSize        int
	queueSize       int
	healthCheck     bool
	checkTimeout    time.Duration
	maxConns        int
	maxBuffer       byteSize
	checkPid        int

	configFile        string
	pidFile           string
	signal            string
	test              bool
	logFile           string
	drainTimeout      time.Duration
	workerTimeout     time.Duration
	maxRequests       int
	maxRequestsJitter int
}

const usageHeader = `Usage: rpcd [flags]

rpcd is a prefork RPC server: a master process binds the listen address with
one SO_REUSEPORT socket per worker and supervises that many worker processes,
each running its own epoll loop over length-prefixed JSON frames.

Signals to the master: TERM, INT or QUIT stop it gracefully; HUP reloads;
USR2 upgrades the binary in place; TTIN/TTOU add/remove a worker; USR1
reopens the log file (see the README's Signals table).

Flags:
`

// newFlagSet defines the built-in flags on a new flag set; parseFlags
// parses it, and prints its usage on out.
func newFlagSet(opts *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rpcd", flag.ContinueOnError)
	fs.SetOutput(out)
	opts.maxFrame = protocol.DefaultMaxFrame
	opts.maxBuffer = worker.DefaultMaxBuffer
	fs.StringVar(&opts.listen, "listen", "127.0.0.1:8080", "`host:port` to serve on; port 0 picks a free one")
	fs.IntVar(&opts.workers, "workers", defaultWorkers(), "number of worker processes; unset, the CPUs this process may use: $GOMAXPROCS if set, else the CPU affinity and cgroup CPU quota, rounded up")
	fs.StringVar(&opts.byteOrder, "byteorder", "little", "byte order of the 4-byte length prefix: little or big")
	fs.Var(&opts.maxFrame, "max-frame", "largest request body in bytes (suffixes KiB, MiB); a longer frame is answered with frame_too_large and its connection closed")
	fs.DurationVar(&opts.idleTimeout, "idle-timeout", 60*time.Second, "close a connection with nothing in flight after this quiet spell (0 disables)")
	fs.DurationVar(&opts.readTimeout, "read-timeout", 30*time.Second, "drop a connection whose frame stays half-received this long (0 disables)")
	fs.StringVar(&opts.cpuProfileDir, "cpuprofile-dir", "", "each worker writes a Go CPU profile of its whole life into this `directory` (for go tool pprof)")
	fs.DurationVar(&opts.writeTimeout, "write-timeout", 30*time.Second, "drop a connection whose pending answers make no progress this long: a client that stopped reading (0 disables)")
	fs.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 8*time.Second, "on a stop signal, how long workers may drain before they are killed")
	fs.StringVar(&opts.logLevel, "log-level", "info", "log level: debug (adds a line per request), info, warn or error")
	fs.StringVar(&opts.logFormat, "log-format", "console", "log format: console or json")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")
	fs.DurationVar(&opts.handlerTimeout, "handler-timeout", worker.DefaultHandlerTimeout, "answer a blocking method timeout when it has not answered this long after it was read")
	fs.IntVar(&opts.poolSize, "pool-size", 0, "goroutines per worker running blocking methods (0: the CPUs this process may use)")
	fs.IntVar(&opts.queueSize, "queue-size", worker.DefaultQueueSize, "blocking calls a worker queues before it answers overloaded")
	fs.BoolVar(&opts.healthCheck, "check", false, "health check: ping the server at -listen (a wildcard host means 127.0.0.1), exit 0 on its pong within -check-timeout, else 1")
	fs.DurationVar(&opts.checkTimeout, "check-timeout", 2*time.Second, "how long -check waits for the pong")
	fs.IntVar(&opts.maxConns, "max-conns", 0, "connections per worker; at the limit a worker stops accepting until one closes (0: the descriptor limit less 64, at most 65536)")
	fs.Var(&opts.maxBuffer, "max-buffer", "memory budget per worker for half-received frames and unsent answers (suffixes KiB, MiB); near it reading pauses, past it the connections holding the most are dropped")
	fs.IntVar(&opts.checkPid, "check-pid", 0, "with -check, ping the address of the rpcd master with this `pid` instead of -listen: its command line and -config resolved as it did (-check-pid=1 in a container)")
	addLifecycleFlags(fs, opts)
	return fs
}

// parseFlags parses args, every flag of fs defined. -h prints the usage
// on fs's output. A bad flag is said in one line with a pointer to -h, as
// go tools do, not above the whole usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.VisitAll(explainDurations)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs)
	case err != nil:
		fmt.Fprintf(out, "rpcd: %v\nRun 'rpcd -h' for usage.\n", err)
	}
	return err
}

// printUsage prints the usage of rpcd with the flags of fs on its output.
func printUsage(fs *flag.FlagSet) {
	// The flag package names the type of its own duration values only.
	fs.VisitAll(func(f *flag.Flag) {
		if d, ok := f.Value.(durationValue); ok {
			f.Value = d.Getter
		}
	})
	fmt.Fprint(fs.Output(), usageHeader)
	fs.PrintDefaults()
}

// explainDurations has f, if it holds a time.Duration, say what it wants
// when it rejects a value, on the command line or in a -config file.
func explainDurations(f *flag.Flag) {
	if g, ok := f.Value.(flag.Getter); ok {
		if _, ok := g.Get().(time.Duration); ok {
			f.Value = durationValue{g}
		}
	}
}

// durationValue is a duration flag that says why it rejects a value, where
// the flag package says "parse error".
type durationValue struct{ flag.Getter }

func (d durationValue) Set(s string) error {
	if err := d.Getter.Set(s); err != nil {
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			return fmt.Errorf("a duration needs a unit, like %ss or %sms", s, s)
		}
		return errors.New("want a duration, like 500ms, 30s or 1m30s")
	}
	return nil
}

// check validates what the flag package cannot.
func (o *options) check() error {
	if err := o.checkLifecycle(); err != nil {
		return err
	}
	if o.workers < 1 {
		return fmt.Errorf("-workers=%d: need at least 1", o.workers)
	}
	if _, err := protocol.ParseByteOrder(o.byteOrder); err != nil {
		return fmt.Errorf("-byteorder: %w", err)
	}
	if o.idleTimeout < 0 || o.readTimeout < 0 || o.writeTimeout < 0 || o.shutdownTimeout <= 0 {
		return errors.New("-idle-timeout, -read-timeout and -write-timeout must not be negative, -shutdown-timeout must be positive")
	}
	if err := o.checkBlocking(); err != nil {
		return err
	}
	if o.maxConns < 0 {
		return fmt.Errorf("-max-conns=%d: must not be negative", o.maxConns)
	}
	if o.maxBuffer < o.maxFrame {
		return fmt.Errorf("-max-buffer=%v: must be at least -max-frame (%v)", o.maxBuffer.String(), o.maxFrame.String())
	}
	if err := o.checkHealthCheck(); err != nil {
		return err
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	if o.logFormat != "console" && o.logFormat != "json" {
		return fmt.Errorf("-log-format=%s: want console or json", o.logFormat)
	}
	return nil
}

// byteSize is a flag value in bytes that accepts KiB and MiB suffixes.
type byteSize uint32

const maxByteSize = 1 << 30

func (b *byteSize) String() string {
	switch n := uint32(*b); {
	case n != 0 && n%(1<<20) == 0:
		return strconv.Itoa(int(n>>20)) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.Itoa(int(n>>10)) + "KiB"
	default:
		return strconv.Itoa(int(n))
	}
}

func (b *byteSize) Set(s string) error {
	mult := 1
	switch {
	case strings.HasSuffix(s, "MiB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		mult, s = 1<<10, strings.TrimSuffix(s, "KiB")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxByteSize/mult {
		return fmt.Errorf("want a size from 1 to 1024MiB, like 65536, 64KiB or 1MiB")
	}
	*b = byteSize(n * mult)
	return nil
}

// checkBlocking validates the flags for blocking methods.
func (o *options) checkBlocking() error {
	switch {
	case o.handlerTimeout <= 0:
		return fmt.Errorf("-handler-timeout=%v: must be positive", o.handlerTimeout)
	case o.poolSize < 0, o.queueSize < 1:
		return errors.New("-pool-size must not be negative and -queue-size must be at least 1")
	}
	return nil
}

func addLifecycleFlags(fs *flag.FlagSet, opts *options) {
	fs.StringVar(&opts.configFile, "config", "", "YAML `file` of settings: each key is a flag name without the dash; flags on the command line win; re-read on SIGHUP")
	fs.StringVar(&opts.pidFile, "pidfile", "", "`file` the master writes its pid to, and -s reads it from")
	fs.StringVar(&opts.signal, "s", "", "send the running master (found by -pidfile) a signal: reload, stop, quit or reopen")
	fs.BoolVar(&opts.test, "t", false, "check the configuration (-config and flags) and exit")
	fs.StringVar(&opts.logFile, "log-file", "", "append logs to this `file` instead of stderr; reopened on SIGUSR1")
	fs.DurationVar(&opts.drainTimeout, "drain-timeout", 30*time.Second, "how long a retired worker (after a reload, upgrade, recycle or SIGTTOU) may drain before it is killed")
	fs.DurationVar(&opts.workerTimeout, "worker-timeout", 30*time.Second, "replace a worker whose event loop has not turned for this long: SIGABRT (its goroutine stacks go to its stderr), SIGKILL 2s later (0 disables)")
	fs.IntVar(&opts.maxRequests, "max-requests", 0, "replace a worker gracefully after it has read about this many requests (0 never)")
	fs.IntVar(&opts.maxRequestsJitter, "max-requests-jitter", 0, "add a random 0..n to -max-requests per worker, so workers are not all replaced at once")
}

// checkLifecycle validates the lifecycle flags.
func (o *options) checkLifecycle() error {
	switch {
	case o.drainTimeout <= 0:
		return errors.New("-drain-timeout must be positive")
	case o.workerTimeout != 0 && o.workerTimeout < 2*time.Second:
		return errors.New("-worker-timeout must be 0 (off) or at least 2s: workers beat about once a second")
	case o.maxRequests < 0 || o.maxRequestsJitter < 0:
		return errors.New("-max-requests and -max-requests-jitter must not be negative")
	}
	if _, ok := controlSignals[o.signal]; o.signal != "" && !ok {
		return fmt.Errorf("-s %s: want reload, stop, quit or reopen", o.signal)
	}
	return nil
}
