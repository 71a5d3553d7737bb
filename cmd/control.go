//go:build linux

package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
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
