package master

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	reuseport "github.com/kavu/go_reuseport"
	"golang.org/x/sys/unix"
)

// The descriptor contract between the master and a worker process.
const (
	// ListenFD is the worker's copy of its slot's listening socket.
	ListenFD = 3
	// ReadyFD is the write end of the readiness pipe: the worker writes
	// one byte once it accepts connections, then closes it.
	ReadyFD = 4
	// WorkerSlotEnv names the variable that tells a process it is the
	// worker of slot <n>.
	WorkerSlotEnv = "RPCD_WORKER_SLOT"
)

// firstExtraFD is the descriptor exec.Cmd.ExtraFiles[0] becomes.
const firstExtraFD = 3

// workerFiles lays out a worker's inherited descriptors for exec.Cmd.ExtraFiles.
func workerFiles(listener, ready *os.File) []*os.File {
	files := make([]*os.File, max(ListenFD, ReadyFD)-firstExtraFD+1)
	files[ListenFD-firstExtraFD] = listener
	files[ReadyFD-firstExtraFD] = ready
	return files
}

// bindSockets binds n SO_REUSEPORT listening sockets to listen. With port 0
// the first socket picks the port and the others bind to it. It returns the
// sockets and the address they share.
func bindSockets(listen string, n int) (socks []*os.File, addr net.Addr, err error) {
	want, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	if want.Port != 0 {
		if err := probeFree(listen); err != nil {
			return nil, nil, err
		}
	}
	defer func() {
		if err != nil {
			closeFiles(socks)
			socks = nil
		}
	}()
	for i := range n {
		sock, got, err := listenReusePort(listen)
		if err != nil {
			return socks, nil, fmt.Errorf("bind slot %d: %w", i, err)
		}
		socks = append(socks, sock)
		if i == 0 {
			addr = got
			host, _, _ := net.SplitHostPort(listen)
			listen = net.JoinHostPort(host, strconv.Itoa(got.(*net.TCPAddr).Port))
		}
	}
	return socks, addr, nil
}

// probeFree fails if listen is taken. It binds without SO_REUSEPORT: with
// it, a second master of the same user would silently share the port.
func probeFree(listen string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return listenError(listen, err)
	}
	return l.Close()
}

// listenReusePort binds one SO_REUSEPORT socket and returns the master's
// copy of it.
func listenReusePort(listen string) (*os.File, net.Addr, error) {
	l, err := reuseport.Listen("tcp", listen)
	if err != nil {
		return nil, nil, listenError(listen, err)
	}
	defer l.Close()
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return nil, nil, fmt.Errorf("listen %s: got %T, want a TCP listener", listen, l)
	}
	f, err := tl.File()
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	defer f.Close()
	sock, err := unpolledDup(f)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	return sock, l.Addr(), nil
}

// unpolledDup returns a copy of f that the runtime poller never watches.
// The master never accepts, so a polled copy would only wake it up on every
// incoming connection. f.Fd leaves the socket blocking, so os.NewFile skips
// the poller and the copy's Fd (called on every spawn) never touches the
// O_NONBLOCK flag the worker shares.
func unpolledDup(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// listenError names the address and, for an errno, nothing but the errno:
// "listen 127.0.0.1:8080: address already in use".
func listenError(listen string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("listen %s: %w", listen, errno)
	}
	return fmt.Errorf("listen %s: %w", listen, err)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
