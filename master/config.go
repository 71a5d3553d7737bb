package master

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultShutdownTimeout = 10 * time.Second
	DefaultStartTimeout    = 30 * time.Second
	DefaultDrainTimeout    = 30 * time.Second
)

// Config says where to listen and how to start and stop workers.
type Config struct {
	// Listen is the host:port every slot binds. Port 0 picks a free port,
	// which all slots then share.
	Listen string
	// Workers is the number of worker slots; 0 means runtime.NumCPU().
	Workers int
	// ShutdownTimeout is how long workers get to exit after SIGTERM before
	// they are sent SIGKILL; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// StartTimeout is how long a new worker has to report ready before it
	// is killed and replaced; 0 means DefaultStartTimeout.
	StartTimeout time.Duration

	// Path is the worker executable; empty means the running executable.
	Path string
	// Args are the worker's arguments, without the program name.
	Args []string
	// Env is the worker's environment; nil means the master's own.
	// WorkerSlotEnv is added for each worker. The master passes both on
	// as they are: settings that must stay off the worker's command line
	// (world-readable in /proc) belong here rather than in Args.
	Env []string
	// Stdout and Stderr receive the workers' output; nil means the
	// master's own.
	Stdout, Stderr *os.File

	// DrainTimeout is how long a retired worker (an old generation after a
	// reload, a recycled or removed one) may drain before it is sent
	// SIGKILL; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// WorkerTimeout is how long a ready worker may go without a heartbeat
	// on its status pipe before it is killed and replaced; 0 disables the
	// watchdog.
	WorkerTimeout time.Duration

	// Reload, if set, is called on the loop goroutine on SIGHUP to get the
	// next generation's configuration. An error keeps the running
	// generation as it is. Path, Stdout, Stderr, Signals and the hooks of
	// the result are ignored: they stay those of the running master. A nil
	// Env keeps the running one.
	Reload func() (Config, error)
	// Reopen, if set, is called on the loop goroutine on SIGUSR1, before
	// the workers are sent SIGUSR1, to reopen the master's log.
	Reopen func() error
	// CheckArgs are the arguments SIGUSR2 first runs the binary at Path
	// with; only if that exits 0 does the master re-execute itself.
	// Empty means "-version".
	CheckArgs []string
	// Inherited is the value of InheritEnv this process was started with
	// by a master that re-executed itself; empty for a fresh start.
	Inherited string

	// Signals, if set, is a channel from CatchSignals, catching the
	// master's signals since before New; Run acts on what it buffered and
	// leaves stopping it to the caller. Nil makes Run catch them itself.
	Signals chan os.Signal

	// The hooks below, if set, are called on the master's loop goroutine
	// and must not block. A service manager notifier is their user.
	//
	// OnReady is called once, when every slot's first worker has reported
	// ready.
	OnReady func()
	// OnStopping is called once, when a graceful stop begins.
	OnStopping func()
	// OnReloading is called when a reload (SIGHUP) begins, and when the
	// image that an upgrade executed starts rolling out its generation.
	// OnReloaded follows once that has ended: err is nil when the new
	// generation serves, else why the running one carries on. A stop that
	// begins meanwhile skips OnReloaded.
	OnReloading func()
	OnReloaded  func(err error)
}

// withDefaults validates cfg and fills in its zero values.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Listen == "" {
		return cfg, errors.New("check config: listen address is empty")
	}
	if cfg.Workers < 0 {
		return cfg, fmt.Errorf("check config: negative worker count %d", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.WorkerTimeout < 0 {
		return cfg, fmt.Errorf("check config: negative worker timeout %v", cfg.WorkerTimeout)
	}
	if len(cfg.CheckArgs) == 0 {
		cfg.CheckArgs = []string{"-version"}
	}
	if cfg.Path == "" {
		path, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("find own executable: %w", err)
		}
		cfg.Path = path
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	cfg.Env = withoutVar(withoutVar(cfg.Env, WorkerSlotEnv), InheritEnv)
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return cfg, nil
}

// withoutVar returns a copy of env without any assignment to name.
func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// backoff spaces out the restarts of a slot whose workers keep failing.
type backoff struct {
	first  time.Duration // delay after the first failure
	max    time.Duration // cap on the delay
	stable time.Duration // a ready worker up this long clears the failures
}

var defaultBackoff = backoff{
	first:  100 * time.Millisecond,
	max:    10 * time.Second,
	stable: 10 * time.Second,
}

// delay returns how long to wait before restarting a slot after its
// failures-th consecutive failure (failures >= 1).
func (b backoff) delay(failures int) time.Duration {
	d := b.first
	for i := 1; i < failures && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}
