package cmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rpcd/rpcd/master"
)

// commandOnly are the flags that pick an action rather than a setting: they
// are no configuration keys and are never passed on to workers.
var commandOnly = map[string]bool{"config": true, "s": true, "t": true, "version": true, "check": true}

// applyConfigFile sets every flag named in the YAML mapping at path that the
// command line has not set: flags given on the command line win. Every key
// must name a flag; values must be scalars, written as on the command line.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("parse config %s: line %d: want a mapping of flag names to values", path, root.Line)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if err := checkKey(fs, key, val, seen); err != nil {
			return fmt.Errorf("parse config %s: line %d: %w", path, key.Line, err)
		}
		if onCommandLine[key.Value] {
			continue
		}
		if err := fs.Set(key.Value, val.Value); err != nil {
			return fmt.Errorf("parse config %s: line %d: %s: %w", path, key.Line, key.Value, err)
		}
	}
	return nil
}

func checkKey(fs *flag.FlagSet, key, val *yaml.Node, seen map[string]bool) error {
	switch {
	case key.Kind != yaml.ScalarNode:
		return errors.New("keys must be flag names")
	case fs.Lookup(key.Value) == nil || commandOnly[key.Value]:
		return fmt.Errorf("unknown key %q: keys are the flags of rpcd -h, without the dash", key.Value)
	case seen[key.Value]:
		return fmt.Errorf("key %q given twice", key.Value)
	case val.Kind != yaml.ScalarNode || val.Tag == "!!null":
		return fmt.Errorf("%s: want a single value", key.Value)
	}
	seen[key.Value] = true
	return nil
}

// resolve parses args over the configuration file they name and validates
// the result, as the master does at start, on SIGHUP, and for -t.
func resolve(args []string) (*options, *flag.FlagSet, error) {
	opts := new(options)
	fs := newFlagSet(opts, io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if err := applyConfigFile(fs, opts.configFile); err != nil {
		return nil, nil, err
	}
	if err := opts.check(); err != nil {
		return nil, nil, err
	}
	return opts, fs, nil
}

// workerArgsEnv names the variable in which a worker gets its resolved
// flags from the master, as a JSON array of "-name=value" strings. The
// environment of a process is readable by its owner only, where its command
// line is readable by every user, and the flags may hold a password.
const workerArgsEnv = "RPCD_WORKER_ARGS"

// workerArgs lists the resolved settings as explicit flags for the workers,
// so a worker never reads a configuration file that may be half-written.
func workerArgs(fs *flag.FlagSet) []string {
	var args []string
	fs.Visit(func(f *flag.Flag) {
		if !commandOnly[f.Name] {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	sort.Strings(args)
	return args
}

// workerEnv is the environment workers start with: the master's own,
// without the service manager's socket (only the master speaks for the
// service), and with args in workerArgsEnv.
func workerEnv(args []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != notifySocketEnv && name != workerArgsEnv {
			env = append(env, kv)
		}
	}
	enc, _ := json.Marshal(args) // a []string always encodes
	return append(env, workerArgsEnv+"="+string(enc))
}

// roleArgs returns the flags to parse: for a worker, those its master put
// in workerArgsEnv, then its own command line (empty from a master).
func roleArgs(args []string) ([]string, error) {
	enc, ok := os.LookupEnv(workerArgsEnv)
	if _, worker := os.LookupEnv(master.WorkerSlotEnv); !worker || !ok {
		return args, nil
	}
	var fromMaster []string
	if err := json.Unmarshal([]byte(enc), &fromMaster); err != nil {
		return nil, fmt.Errorf("read %s: %w", workerArgsEnv, err)
	}
	return append(fromMaster, args...), nil
}

// masterSettings are the parts of master.Generation that come from the
// flags. The workers' command line stays empty: their settings go in Env.
func masterSettings(opts *options, fs *flag.FlagSet) master.Generation {
	return master.Generation{
		Listen:          opts.listen,
		Workers:         opts.workers,
		ShutdownTimeout: opts.shutdownTimeout,
		DrainTimeout:    opts.drainTimeout,
		WorkerTimeout:   opts.workerTimeout,
		Env:             workerEnv(workerArgs(fs)),
	}
}

// withLifecycle completes cfg for a master started with args: resolved
// settings for the workers, the SIGHUP reload, the SIGUSR1 log reopen, the
// SIGUSR2 self-check and the handover from a previous image.
func withLifecycle(cfg master.Config, args []string, logOut *logOutput) master.Config {
	g := &cfg.Generation
	g.Args, g.Env = nil, workerEnv(args)
	if opts, fs, err := resolve(args); err == nil {
		s := masterSettings(opts, fs)
		g.Env, g.DrainTimeout, g.WorkerTimeout = s.Env, s.DrainTimeout, s.WorkerTimeout
	}
	cfg.Reload = func() (master.Generation, error) {
		opts, fs, err := resolve(args)
		if err != nil {
			return master.Generation{}, err
		}
		return masterSettings(opts, fs), nil
	}
	cfg.Reopen = logOut.reopen
	cfg.CheckArgs = append([]string{"-t"}, args...)
	cfg.Inherited = os.Getenv(master.InheritEnv)
	return cfg
}

func addLifecycleFlags(fs *flag.FlagSet, opts *options) {
	fs.StringVar(&opts.configFile, "config", "", "YAML `file` of settings: each key is a flag name without the dash; flags on the command line win; re-read on SIGHUP")
	fs.StringVar(&opts.pidFile, "pidfile", "", "`file` the master writes its pid to, and -s reads it from")
	fs.StringVar(&opts.signal, "s", "", "send the running master (found by -pidfile) a signal: reload, stop, quit or reopen")
	fs.BoolVar(&opts.test, "t", false, "check the configuration (-config and flags) and exit")
	fs.StringVar(&opts.logFile, "log-file", "", "append logs to this `file` instead of stderr; reopened on SIGUSR1")
	fs.DurationVar(&opts.drainTimeout, "drain-timeout", 30*time.Second, "how long a retired worker (after a reload, upgrade, recycle or SIGTTOU) may drain before it is killed")
	fs.DurationVar(&opts.workerTimeout, "worker-timeout", 30*time.Second, "kill and replace a worker whose event loop has not turned for this long (0 disables)")
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
