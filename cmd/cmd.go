package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
)

// Version is rpcd's version; release builds set it with
// -ldflags "-X github.com/rpcd/rpcd/cmd.Version=v1.2.3".
var Version = ""

// Main runs rpcd with reg's methods and exits with its status.
func Main(reg *rpc.Registry, ext ...Option) {
	os.Exit(Run(os.Args[1:], reg, os.Stdout, os.Stderr, ext...))
}

// Run runs rpcd with args (no program name) and returns its exit status:
// 0 after a graceful stop, 1 when the server fails, 2 for bad flags.
func Run(args []string, reg *rpc.Registry, stdout, stderr io.Writer, ext ...Option) int {
	var opts options
	fs := newFlagSet(&opts, stderr)
	args, err := roleArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rpcd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if opts.version {
		fmt.Fprintf(stdout, "rpcd %s %s\n", version(), runtime.Version())
		return 0
	}
	sigs, stopCatching := catchMasterSignals(&opts)
	defer stopCatching()
	if err := applyConfigFile(fs, opts.configFile); err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	if err := opts.check(); err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	if code, done := runAction(&opts, stdout, stderr); done {
		return code
	}
	if opts.healthCheck {
		return runHealthCheck(&opts, stdout, stderr)
	}
	if slot, ok := os.LookupEnv(master.WorkerSlotEnv); ok {
		return runWorker(&opts, slot, reg, stderr, newExtras(ext))
	}
	return runMaster(&opts, args, stderr, sigs)
}

func runMaster(opts *options, args []string, stderr io.Writer, sigs chan os.Signal) int {
	logOut := newLogOutput(opts, stderr)
	log := newLogger(opts, logOut).With(zap.String("role", "master"))
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush
	defer writePidfile(opts, log)()
	service := newServiceNotifier(log)
	m, err := master.New(service.hook(withLifecycle(master.Config{
		Listen:          opts.listen,
		Workers:         opts.workers,
		ShutdownTimeout: opts.shutdownTimeout,
		Signals:         sigs,
	}, args, logOut)), log)
	if err == nil {
		log.Info("starting", zap.String("version", version()), zap.Int("pid", os.Getpid()),
			zap.String("listen", opts.listen), zap.Int("workers", opts.workers))
		err = m.Run(context.Background())
	}
	if err != nil {
		log.Error("master failed", zap.Error(err))
		return 1
	}
	log.Info("stopped")
	return 0
}

func runWorker(opts *options, slotEnv string, reg *rpc.Registry, stderr io.Writer, ext *extras) int {
	slot, _ := strconv.Atoi(slotEnv)
	logOut := newLogOutput(opts, stderr)
	log := newLogger(opts, logOut).With(zap.String("role", "worker"), zap.Int("slot", slot), zap.Int("pid", os.Getpid()))
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush
	status := newStatusPipe(opts, log)
	order, _ := protocol.ParseByteOrder(opts.byteOrder)
	w, err := worker.New(worker.Config{
		ByteOrder:    order,
		MaxFrame:     uint32(opts.maxFrame),
		IdleTimeout:  opts.idleTimeout,
		ReadTimeout:  opts.readTimeout,
		WriteTimeout: opts.writeTimeout,
		PoolSize:     opts.poolSize,
		QueueSize:    opts.queueSize,

		HandlerTimeout: opts.handlerTimeout,
		Heartbeat:      status.heartbeat,
	}, reg, log)
	if err != nil {
		log.Error("worker failed", zap.Error(err))
		return 1
	}
	defer ext.openCache(opts, log)()
	defer startCPUProfile(opts.cpuProfileDir, slot, log)()
	status.w = w
	stopOnSignal(w, log)
	handleWorkerSignals(w, logOut, log)
	go stopWhenOrphaned(w, log)
	if err := w.Serve(master.ListenFD, status.ready); err != nil {
		log.Error("worker failed", zap.Error(err))
		return 1
	}
	return 0
}

// stopOnSignal drains the worker on SIGTERM, which only the master sends. The
// signals a terminal sends to its whole process group are the master's to
// act on, so the worker ignores them.
func stopOnSignal(w *worker.Worker, log *zap.Logger) {
	signal.Ignore(unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGUSR1, unix.SIGUSR2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM)
	go func() {
		sig := <-sigs
		log.Info("stop signal", zap.Stringer("signal", sig))
		w.Shutdown()
	}()
}

// orphanCheck is how often a worker checks that its master is still alive.
const orphanCheck = time.Second

// stopWhenOrphaned drains the worker once its master is gone (it has been
// re-parented), so a killed master never leaves workers serving on their own.
func stopWhenOrphaned(w *worker.Worker, log *zap.Logger) {
	parent := os.Getppid()
	t := time.NewTicker(orphanCheck)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != parent {
			log.Warn("master is gone; draining", zap.Int("master_pid", parent))
			w.Shutdown()
			return
		}
	}
}

func newLogger(opts *options, out io.Writer) *zap.Logger {
	level, _ := zapcore.ParseLevel(opts.logLevel)
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	var encoder zapcore.Encoder
	if opts.logFormat == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(out)), level))
}

func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
