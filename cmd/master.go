//go:build linux

package cmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/rpc"
)

// catchMasterSignals starts catching the master's signals when this process
// is to be the master, before it reads its configuration file or binds: a
// SIGHUP or SIGTERM then waits for the master to act on it instead of
// killing the process. It returns the channel (nil for an action) and what
// stops catching.
func catchMasterSignals(s *settings) (chan os.Signal, func()) {
	if s.test || s.signal != "" || s.healthCheck {
		return nil, func() {}
	}
	sigs := master.CatchSignals()
	// A log reader that went away (rpcd | head) makes writes to stderr
	// fail with EPIPE; the server goes on serving, as nginx does.
	signal.Ignore(unix.SIGPIPE)
	return sigs, func() { signal.Stop(sigs) }
}

// runMaster runs the master until it stops. Like a bad flag, a -listen
// that cannot be bound and a pidfile another master holds are said on
// stderr, before any log is opened.
func runMaster(s *settings, reg *rpc.Registry, stderr io.Writer, sigs chan os.Signal) int {
	// An upgraded image serves the sockets it was handed: it checks nothing
	// that could end the master halfway through the upgrade.
	if os.Getenv(master.InheritEnv) == "" {
		if err := checkListen(s.listen); err != nil {
			fmt.Fprintf(stderr, "rpcd: %v\n", err)
			return listenErrorStatus(err)
		}
	}
	pid, err := lockPidfile(s.pidFile, os.Getenv(master.InheritEnv))
	if err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 1
	}
	defer pid.remove()
	logOut := newLogOutput(&s.options, stderr)
	log := newLogger(&s.options, logOut).With(zap.String("role", "master"))
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush
	cfg := masterConfig(s, logOut, sigs, newServiceNotifier(log))
	cfg.PidFile = pid.file()
	if err := serveMaster(s, reg, cfg, log); err != nil {
		log.Error("master failed", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

// serveMaster adds to cfg what the master serves beside the workers (the
// metrics endpoint, the registration in etcd), then runs the master until
// it stops.
func serveMaster(s *settings, reg *rpc.Registry, cfg master.Config, log *zap.Logger) error {
	var m *master.Master
	registration, err := newRegistration(s, func() net.Addr { return m.Addr() }, log)
	if err != nil {
		return err
	}
	var ready readiness
	cfg.Hooks, cfg.Metrics = ready.wrap(cfg.Hooks), s.observe.metricsConfig(reg)
	registration.wire(&cfg)
	if m, err = master.New(cfg, log); err != nil {
		return err
	}
	endpoint, err := listenMetrics(&s.observe, m, &ready, log)
	if err != nil {
		return err
	}
	if endpoint != nil {
		go endpoint.serve()
		defer endpoint.close()
	}
	log.Info("starting", zap.String("version", version()), zap.Int("pid", os.Getpid()),
		zap.String("listen", s.listen), zap.Int("workers", s.workers))
	for _, e := range s.ext {
		e.Announce(log)
	}
	defer registration.wait()
	return m.Run(context.Background())
}

// masterConfig is the master's whole configuration: the generation s
// describes, and what the master keeps across generations. SIGHUP resolves
// s's command line again for the next generation; SIGUSR1 reopens the log;
// SIGUSR2 checks the new binary with -t and the same command line; a
// previous image may hand over its workers; sigs were caught since start;
// and service hears of the master's state changes.
func masterConfig(s *settings, logOut *logOutput, sigs chan os.Signal, service *serviceNotifier) master.Config {
	return master.Config{
		Generation: s.generation(),
		Reload: func() (master.Generation, error) {
			next, err := resolve(s.args, s.exts)
			if err != nil {
				return master.Generation{}, err
			}
			return next.generation(), nil
		},
		Reopen:    logOut.reopen,
		CheckArgs: append([]string{"-t"}, s.args...),
		Inherited: os.Getenv(master.InheritEnv),
		Signals:   sigs,
		Hooks:     service.hooks(),
	}
}
