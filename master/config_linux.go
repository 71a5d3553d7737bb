package master

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Defaults for the zero values of Generation.
const (
	DefaultShutdownTimeout = 10 * time.Second
	DefaultStartTimeout    = 30 * time.Second
	DefaultDrainTimeout    = 30 * time.Second
)

// Generation is the settings of one generation of workers. Config holds
// the first; each reload yields the next.
type Generation struct {
	// Listen is the host:port every slot binds. Port 0 picks a free port,
	// which all slots then share.
	Listen string
	// Workers is the number of worker slots; 0 means runtime.NumCPU().
	Workers int
	// Args are the worker's arguments, without the program name.
	Args []string
	// Env is the worker's environment. Nil means the master's own in
	// Config.Generation, and the running generation's in what Config.Reload
	// returns. WorkerSlotEnv is added for each worker. The master passes
	// both on as they are: settings that must stay off the worker's command
	// line (world-readable in /proc) belong here rather than in Args.
	Env []string
	// ShutdownTimeout is how long workers get to exit after SIGTERM before
	// they are sent SIGKILL; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// StartTimeout is how long a new worker has to report ready before it
	// is killed and replaced; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// DrainTimeout is how long a retired worker (an old generation after a
	// reload, a recycled or removed one) may drain before it is sent
	// SIGKILL; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// WorkerTimeout is how long a ready worker may go without a status
	// byte before it is killed and replaced; 0 disables the watchdog.
	WorkerTimeout time.Duration
}

// Hooks report the master's state changes; a service manager notifier is
// their user. Each one set is called on the master's loop goroutine and
// must not block.
type Hooks struct {
	// OnReady is called once, when every slot's first worker has reported
	// ready.
	OnReady func()
	// OnStopping is called once, when a graceful stop begins.
	OnStopping func()
	// OnReloading is called when a reload (SIGHUP) begins, and when the
	// image that an upgrade executed starts rolling out its generation.
	OnReloading func()
	// OnReloaded follows OnReloading once that has ended: err is nil when
	// the new generation serves, else why the running one carries on. A
	// stop that begins meanwhile skips it.
	OnReloaded func(err error)
	// OnWorkers is called with the serving generation's slot count in the
	// step that made the master ready (after OnReady), then each time it
	// changes: SIGTTIN, SIGTTOU, or a rollout of another count.
	OnWorkers func(workers int)
	// HoldStop, if set, is called once, after OnStopping, and returns a
	// channel closed when the workers may be told to stop. SIGTERM waits
	// for it, Config.StopDelay being the longest wait; a nil channel waits
	// the whole delay.
	HoldStop func() <-chan struct{}
}

// Config is what the master lives with for its whole life.
type Config struct {
	// Generation is the first generation's settings.
	Generation Generation
	// Path is the worker executable; empty means the running executable.
	Path string
	// CheckArgs are the arguments SIGUSR2 first runs the binary at Path
	// with; only if that exits 0 does the master re-execute itself.
	// Empty means "-version".
	CheckArgs []string
	// Stdout and Stderr receive the workers' output; nil means the
	// master's own.
	Stdout, Stderr *os.File
	// Reload, if set, is called on the loop goroutine on SIGHUP to get the
	// next generation's settings. An error keeps the running generation; a
	// nil Env keeps the running generation's Env. Unset, a reload rolls out
	// the running generation's settings again.
	Reload func() (Generation, error)
	// Reopen, if set, is called on the loop goroutine on SIGUSR1, before
	// the workers are sent ReopenSignal, to reopen the master's log.
	Reopen func() error
	// Inherited is the value of InheritEnv this process was started with
	// by a master that re-executed itself; empty for a fresh start.
	Inherited string
	// Signals, if set, is a channel from CatchSignals, catching the
	// master's signals since before New; Run acts on what it buffered and
	// leaves stopping it to the caller. Nil makes Run catch them itself.
	Signals chan os.Signal
	// Hooks report state changes.
	Hooks Hooks
	// PidFile, if set, is the pidfile the caller holds locked for the
	// master's whole life. An upgrade hands its descriptor, and so the
	// lock, over to the new image, which gets it from InheritedPidFile.
	PidFile *os.File
	// Metrics, if set, turns on the shared counters (MetricsFD).
	Metrics *MetricsConfig
	// StopDelay is how long a graceful stop waits, after OnStopping,
	// before it tells the workers to stop, so that clients can learn of it
	// first; with Hooks.HoldStop, the longest it waits. It counts against
	// Generation.ShutdownTimeout, and a delay that would not leave the
	// workers half of that timeout is cut down to it.
	StopDelay time.Duration
	// UpgradeEnv, if set, is called on the loop goroutine just before an
	// upgrade executes the new image, and returns NAME=value assignments to
	// add to its environment, replacing any of the same names.
	UpgradeEnv func() []string
}

// withDefaults validates cfg and fills in its zero values.
func (cfg Config) withDefaults() (Config, error) {
	gen, err := cfg.Generation.withDefaults()
	if err != nil {
		return cfg, err
	}
	cfg.Generation = gen
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
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return cfg, nil
}

// withDefaults validates g and fills in its zero values.
func (g Generation) withDefaults() (Generation, error) {
	if g.Listen == "" {
		return g, errors.New("check config: listen address is empty")
	}
	if g.Workers < 0 {
		return g, fmt.Errorf("check config: negative worker count %d", g.Workers)
	}
	if g.WorkerTimeout < 0 {
		return g, fmt.Errorf("check config: negative worker timeout %v", g.WorkerTimeout)
	}
	if g.Workers == 0 {
		g.Workers = runtime.NumCPU()
	}
	g.ShutdownTimeout = orDefault(g.ShutdownTimeout, DefaultShutdownTimeout)
	g.StartTimeout = orDefault(g.StartTimeout, DefaultStartTimeout)
	g.DrainTimeout = orDefault(g.DrainTimeout, DefaultDrainTimeout)
	if g.Env == nil {
		g.Env = os.Environ()
	}
	g.Env = withoutVar(withoutVar(g.Env, WorkerSlotEnv), InheritEnv)
	return g, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
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
