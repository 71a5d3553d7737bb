//go:build linux

package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/worker"
)

// settings are one resolution of rpcd's settings: a command line, the
// -config file it names under it, and the values of both, validated. The
// master resolves them at start and on each SIGHUP and hands each generation
// of workers the result as explicit flags (workerArgs); a worker parses those
// and its own command line, never the file.
type settings struct {
	options
	observe observeOptions
	args    []string      // the command line they were parsed from
	fs      *flag.FlagSet // every flag, the extensions' included
	exts    []Extension
	ext     []ExtensionSettings // one per extension, in order
	reg     registryOptions     // the master's registration in etcd
}

// parseSettings parses the command line args, with exts' flags. Like the
// flag package, it says what is wrong with args on out, where -h prints the
// usage (flag.ErrHelp). It reads no file: finish does.
func parseSettings(args []string, exts []Extension, out io.Writer) (*settings, error) {
	s := &settings{args: args, exts: exts}
	s.fs = newFlagSet(&s.options, out)
	s.observe.addFlags(s.fs)
	addRegistryFlags(s.fs, &s.reg)
	for _, e := range exts {
		s.ext = append(s.ext, e.Flags(s.fs))
	}
	if err := parseFlags(s.fs, args); err != nil {
		return nil, err
	}
	if s.fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q (rpcd takes flags only)", s.fs.Arg(0))
		fmt.Fprintf(out, "rpcd: %v\nRun 'rpcd -h' for usage.\n", err)
		return nil, err
	}
	return s, nil
}

// resolve is the master's resolution of the next generation's settings on
// SIGHUP: args parsed, then finished and the address checked as at start.
func resolve(args []string, exts []Extension) (*settings, error) {
	s, err := parseSettings(args, exts, io.Discard)
	if err == nil {
		err = s.finish()
	}
	if err == nil {
		err = checkListen(s.listen)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// finish sets what the -config file holds under the command line and
// validates the whole. The master and the commands (-t, -s, -check) call it
// once their flags are parsed; a worker, whose settings its master
// finished, never does.
func (s *settings) finish() error {
	if err := applyConfigFile(s.fs, s.configFile); err != nil {
		return err
	}
	return s.check()
}

// check validates what the flag package cannot, the extensions' values too.
func (s *settings) check() error {
	if err := s.options.check(); err != nil {
		return err
	}
	if err := s.observe.check(); err != nil {
		return err
	}
	if err := s.reg.check(s.listen, s.shutdownTimeout); err != nil {
		return err
	}
	for _, e := range s.ext {
		if err := e.Check(); err != nil {
			return err
		}
	}
	return nil
}

// checkListen validates a -listen address as binding it would, short of
// binding: its syntax, its port range, and that its host resolves. The
// master (at start and on SIGHUP) and -t check it; -check, which only
// dials it, reports a bad address its own way.
func checkListen(listen string) error {
	if _, err := net.ResolveTCPAddr("tcp", listen); err != nil {
		return fmt.Errorf("-listen=%s: %w", listen, err)
	}
	return nil
}

// listenErrorStatus is the exit status for a -listen that checkListen
// refused: 2, a bad configuration, unless a resolver failed to answer,
// which a later start may not meet (a service manager restarts on 1, as at
// boot before the network is up).
func listenErrorStatus(err error) int {
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsNotFound {
		return 1
	}
	return 2
}

// workerArgs lists the settings as explicit flags for the workers, so that
// a worker never reads a configuration file that may be half-written.
func (s *settings) workerArgs() []string {
	var args []string
	s.fs.Visit(func(f *flag.Flag) {
		if !commandOnly[f.Name] {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	sort.Strings(args)
	return args
}

// generation is what s decides of a generation of workers: address, count,
// timeouts, and the environment that carries the settings to them. Their
// command line stays empty. It serves at start and for every reload.
func (s *settings) generation() master.Generation {
	return master.Generation{
		Listen:          s.listen,
		Workers:         s.workers,
		ShutdownTimeout: s.shutdownTimeout,
		DrainTimeout:    s.drainTimeout,
		WorkerTimeout:   s.workerTimeout,
		Env:             workerEnv(s.workerArgs()),
	}
}

// workerConfig is what s decides of a worker's event loop; heartbeat is
// called on each turn of it.
func (s *settings) workerConfig(heartbeat func()) worker.Config {
	order, _ := protocol.ParseByteOrder(s.byteOrder) // checked
	return worker.Config{
		ByteOrder:      order,
		MaxFrame:       uint32(s.maxFrame),
		IdleTimeout:    s.idleTimeout,
		ReadTimeout:    s.readTimeout,
		WriteTimeout:   s.writeTimeout,
		PoolSize:       s.poolSize,
		QueueSize:      s.queueSize,
		HandlerTimeout: s.handlerTimeout,
		MaxConns:       s.maxConns,
		MaxBuffer:      int(s.maxBuffer),
		Heartbeat:      heartbeat,
	}
}
