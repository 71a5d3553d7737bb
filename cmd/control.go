package cmd

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/worker"
)

// controlSignals are the -s actions and the signals they send the master,
// as nginx -s does.
var controlSignals = map[string]unix.Signal{
	"reload": unix.SIGHUP,
	"stop":   unix.SIGTERM,
	"quit":   unix.SIGQUIT,
	"reopen": unix.SIGUSR1,
}

// runAction carries out -t or -s and reports whether it did.
func runAction(opts *options, stdout, stderr io.Writer) (code int, done bool) {
	switch {
	case opts.test:
		fmt.Fprintf(stdout, "rpcd: configuration %s is ok\n", configName(opts))
		return 0, true
	case opts.signal != "":
		if err := signalMaster(opts); err != nil {
			fmt.Fprintf(stderr, "rpcd: -s %s: %v\n", opts.signal, err)
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func configName(opts *options) string {
	if opts.configFile == "" {
		return "(flags only)"
	}
	return opts.configFile
}

// signalMaster sends the -s action's signal to the pid in -pidfile.
func signalMaster(opts *options) error {
	sig, ok := controlSignals[opts.signal]
	if !ok {
		return errors.New("want reload, stop, quit or reopen")
	}
	if opts.pidFile == "" {
		return errors.New("no -pidfile to find the master by")
	}
	b, err := os.ReadFile(opts.pidFile)
	if err != nil {
		return fmt.Errorf("read pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("read pid: %s holds no pid", opts.pidFile)
	}
	return os.NewSyscallError("kill", unix.Kill(pid, sig))
}

// writePidfile writes the master's pid to -pidfile and returns what removes
// it. A master that re-executes itself keeps its pid and its file.
func writePidfile(opts *options, log *zap.Logger) (remove func()) {
	if opts.pidFile == "" {
		return func() {}
	}
	if pid, ok := runningPid(opts.pidFile); ok {
		log.Warn("pidfile names a running process; leaving it", zap.String("pidfile", opts.pidFile), zap.Int("pid", pid))
		return func() {}
	}
	tmp := opts.pidFile + ".tmp"
	err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if err == nil {
		err = os.Rename(tmp, opts.pidFile)
	}
	if err != nil {
		log.Warn("write pidfile failed", zap.Error(err))
		return func() {}
	}
	return func() { os.Remove(opts.pidFile) }
}

// runningPid returns the pid in path if it names another live process: a
// master already running, whose file a second one must not take over.
func runningPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return 0, false
	}
	err = unix.Kill(pid, 0)
	return pid, err == nil || err == unix.EPERM
}

// logOutput is the log destination: -log-file, reopened on SIGUSR1 for
// logrotate, or the fallback writer (stderr) without one.
type logOutput struct {
	mu       sync.Mutex
	path     string
	file     *os.File
	fallback io.Writer
}

// newLogOutput opens -log-file. If it cannot, it says so on fallback and
// logs there.
func newLogOutput(opts *options, fallback io.Writer) *logOutput {
	o := &logOutput{path: opts.logFile, fallback: fallback}
	if err := o.reopen(); err != nil {
		fmt.Fprintf(fallback, "rpcd: %v; logging to stderr\n", err)
		o.path = ""
	}
	return o
}

func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.file != nil {
		return o.file.Write(p)
	}
	return o.fallback.Write(p)
}

// reopen opens the log file anew; the old one is closed once replaced.
// Safe from any goroutine.
func (o *logOutput) reopen() error {
	if o.path == "" {
		return nil
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	o.mu.Lock()
	old := o.file
	o.file = f
	o.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// statusPipe is the worker's end of the master's status pipe: ready once,
// then a heartbeat per loop tick, or a recycle request once -max-requests
// (plus jitter) is reached.
type statusPipe struct {
	log   *zap.Logger
	w     *worker.Worker
	limit uint64 // requests before asking to be recycled; 0 never
}

func newStatusPipe(opts *options, log *zap.Logger) *statusPipe {
	if err := unix.SetNonblock(master.StatusFD, true); err != nil {
		log.Warn("status pipe", zap.Error(os.NewSyscallError("setnonblock", err)))
	}
	p := &statusPipe{log: log}
	if opts.maxRequests > 0 {
		p.limit = uint64(opts.maxRequests + rand.IntN(opts.maxRequestsJitter+1))
	}
	return p
}

func (p *statusPipe) ready() { p.write(master.StatusReady) }

// heartbeat runs on the loop goroutine (worker.Config.Heartbeat).
func (p *statusPipe) heartbeat() {
	b := master.StatusHeartbeat
	if p.limit > 0 && p.w != nil && p.w.Stats().Requests >= p.limit {
		b = master.StatusRecycle
	}
	p.write(b)
}

// write never blocks the loop: a full pipe means the master is busy and
// will see the next byte.
func (p *statusPipe) write(b byte) {
	_, err := unix.Write(master.StatusFD, []byte{b})
	if err != nil && err != unix.EAGAIN && err != unix.EPIPE {
		p.log.Warn("write status pipe", zap.Error(os.NewSyscallError("write", err)))
	}
}

// handleWorkerSignals reopens the log on master.ReopenSignal and drains,
// taking the socket's accept queue along, on master.RetireSignal.
func handleWorkerSignals(w *worker.Worker, logOut *logOutput, log *zap.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, master.ReopenSignal, master.RetireSignal)
	go func() {
		for sig := range sigs {
			if sig == master.RetireSignal {
				log.Info("retire signal", zap.Stringer("signal", sig))
				w.Retire()
				continue
			}
			if err := logOut.reopen(); err != nil {
				log.Warn("reopen log failed", zap.Error(err))
			}
		}
	}()
}
