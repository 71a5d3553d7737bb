package master

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sys is how the master starts, signals, reaps and re-executes processes.
// The master's decisions reach the system only through it, so that tests
// of those decisions run over a fake without forking.
type sys interface {
	// forkExec starts path with argv and env; files[i] becomes the
	// child's descriptor i.
	forkExec(path string, argv, env []string, files []uintptr) (pid int, p process, err error)
	// findProcess returns a handle on a running child it did not start.
	findProcess(pid int) process
	// reap collects one exited child without waiting; ok is false when
	// none has exited.
	reap() (pid int, st unix.WaitStatus, ok bool)
	// exec replaces the process image; it returns only on failure.
	exec(path string, argv, env []string) error
}

// process is a handle on a child for signalling it; *os.Process is one.
// Signal returns os.ErrProcessDone once the child has been reaped.
type process interface {
	Signal(sig os.Signal) error
	Release() error
}

// realSys makes the system calls.
type realSys struct{}

func (realSys) forkExec(path string, argv, env []string, files []uintptr) (int, process, error) {
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		return 0, nil, os.NewSyscallError("fork/exec", err)
	}
	return pid, findProcess(pid), nil
}

func (realSys) findProcess(pid int) process { return findProcess(pid) }

// reap waits for any child (pid -1), so the master must be the only code
// in the process that waits for children.
func (realSys) reap() (int, unix.WaitStatus, bool) {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			return 0, 0, false
		}
		return pid, st, true
	}
}

func (realSys) exec(path string, argv, env []string) error {
	return os.NewSyscallError("execve", syscall.Exec(path, argv, env))
}

// findProcess never fails on Unix: the process is looked up when signalled.
func findProcess(pid int) *os.Process {
	p, _ := os.FindProcess(pid)
	return p
}
