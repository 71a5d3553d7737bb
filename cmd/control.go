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

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
)

// controlSignals are the -s actions and the signals they send the master,
// as nginx -s does.
var controlSignals = map[string]unix.Signal{
	"reload": unix.SIGHUP,
	"stop":   unix.SIGTERM,
	"quit":   unix.SIGQUIT,
	"reopen": unix.SIGUSR1,
}

// runAction carries out -t or -s and reports whether it did. -t checks
// what a start checks short of binding: the settings, which the caller has
// finished, and the address.
func runAction(opts *options, stdout, stderr io.Writer) (code int, done bool) {
	switch {
	case opts.test:
		if err := checkListen(opts.listen); err != nil {
			fmt.Fprintf(stderr, "rpcd: %v\n", err)
			return 2, true
		}
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

// signalMaster sends the -s action's signal to the master whose pid
// -pidfile holds, and only while a master holds the file locked: a pidfile
// left behind may hold the pid of an unrelated process by now.
func signalMaster(opts *options) error {
	sig, ok := controlSignals[opts.signal]
	if !ok {
		return errors.New("want reload, stop, quit or reopen")
	}
	if opts.pidFile == "" {
		return errors.New("no -pidfile to find the master by")
	}
	f, err := os.Open(opts.pidFile)
	if err != nil {
		return fmt.Errorf("read pid: %w", err)
	}
	defer f.Close()
	// A shared lock is granted only if no master holds its exclusive one.
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err {
	case nil:
		return fmt.Errorf("pidfile %s is stale: no running master holds it", opts.pidFile)
	case unix.EWOULDBLOCK:
	default:
		return fmt.Errorf("lock %s: %w", opts.pidFile, os.NewSyscallError("flock", err))
	}
	pid, err := readPid(f)
	if err != nil {
		return fmt.Errorf("read pid: %s: %w", opts.pidFile, err)
	}
	return os.NewSyscallError("kill", unix.Kill(pid, sig))
}

// readPid reads the pid f holds.
func readPid(f *os.File) (int, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, errors.New("holds no pid")
	}
	return pid, nil
}

// pidfile is the master's -pidfile, which it holds locked (flock, exclusive)
// for its whole life: -s signals only a pid whose file is locked, and a
// second master on the same file refuses to start. The lock belongs to the
// open file, so it lasts across an upgrade, which hands the descriptor over
// to the new image.
type pidfile struct {
	path string
	f    *os.File
}

// lockPidfile takes the master's -pidfile: the one an upgraded image was
// handed over in inherited (InheritEnv's value), or else the file at path,
// created if need be and locked, failing if another master holds it. It
// writes this process's pid into it. An empty path gives a nil *pidfile.
func lockPidfile(path, inherited string) (*pidfile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := master.InheritedPidFile(inherited)
	if err != nil {
		return nil, err
	}
	if f == nil {
		if f, err = openLocked(path); err != nil {
			return nil, err
		}
	}
	p := &pidfile{path: path, f: f}
	if err := p.writePid(); err != nil {
		f.Close()
		return nil, err
	}
	return p, nil
}

// openLocked opens path and locks it, or says which master holds it.
func openLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open pidfile: %w", err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return f, nil
	}
	defer f.Close()
	if err != unix.EWOULDBLOCK {
		return nil, fmt.Errorf("lock pidfile %s: %w", path, os.NewSyscallError("flock", err))
	}
	holder := "unknown pid"
	if pid, err := readPid(f); err == nil {
		holder = "pid " + strconv.Itoa(pid)
	}
	return nil, fmt.Errorf("pidfile %s is locked by a running master (%s)", path, holder)
}

// writePid replaces what the file holds with this process's pid.
func (p *pidfile) writePid() error {
	if err := p.f.Truncate(0); err != nil {
		return fmt.Errorf("write pidfile: %w", err)
	}
	if _, err := p.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("write pidfile: %w", err)
	}
	return nil
}

// file returns the locked file for master.Config.PidFile, nil for none.
func (p *pidfile) file() *os.File {
	if p == nil {
		return nil
	}
	return p.f
}

// remove deletes the file, then releases the lock by closing it.
func (p *pidfile) remove() {
	if p == nil {
		return
	}
	os.Remove(p.path)
	p.f.Close()
}

// logOutput is the log destination: -log-file, reopened on SIGUSR1 for
// logrotate, or the fallback writer (stderr) without one. A process whose
// fallback is its own stderr also points descriptor 2 at the file, so what
// the runtime writes there (a panic, the stacks of an abort) is logged too.
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
	// The Go runtime writes a crash's or an abort's goroutine stacks to
	// descriptor 2: when the process logs to a file, so does its stderr.
	if o.fallback == io.Writer(os.Stderr) {
		if err := unix.Dup3(int(f.Fd()), 2, 0); err != nil {
			f.Close()
			return fmt.Errorf("point stderr at the log file: %w", os.NewSyscallError("dup3", err))
		}
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
