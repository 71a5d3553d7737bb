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
	// StatusFD is the write end of the worker's status pipe, on which it
	// writes one of the Status bytes at a time and which it keeps open.
	StatusFD = 4
	// WorkerSlotEnv names the variable that tells a process it is the
	// worker of slot <n>.
	WorkerSlotEnv = "RPCD_WORKER_SLOT"
	// InheritEnv names the variable in which a master that re-executes
	// itself describes the sockets and workers it hands over.
	InheritEnv = "RPCD_MASTER_INHERIT"
)

// The bytes a worker writes on its status pipe.
const (
	// StatusReady: the worker accepts connections. Written once, first.
	StatusReady byte = 'R'
	// StatusHeartbeat: the worker's event loop is turning. Written at
	// least once a second while it runs; a ready worker silent for the
	// generation's WorkerTimeout is killed.
	StatusHeartbeat byte = 'H'
	// StatusRecycle: the worker wants to be replaced (it has served its
	// maximum number of requests). It may repeat it until it is retired.
	StatusRecycle byte = 'Q'
)

// The signals the master sends a worker besides SIGTERM and SIGKILL.
const (
	// RetireSignal tells a worker whose slot is being removed to drain as
	// on SIGTERM, but to accept and serve what is queued on its listening
	// socket before closing it: the master has closed its own copy, so the
	// worker's close is the last one and would reset whatever is queued.
	RetireSignal = unix.SIGUSR2
	// ReopenSignal tells a worker to reopen its log file.
	ReopenSignal = unix.SIGUSR1
)

// workerFiles lays out a worker's descriptors for syscall.ProcAttr.Files:
// index i becomes the child's descriptor i. MetricsFD is passed only when
// metricsFD is not -1.
func workerFiles(stdin, stdout, stderr uintptr, listener int, status uintptr, metricsFD int) []uintptr {
	files := make([]uintptr, max(ListenFD, StatusFD)+1, MetricsFD+1)
	files[0], files[1], files[2] = stdin, stdout, stderr
	files[ListenFD] = uintptr(listener)
	files[StatusFD] = status
	if metricsFD >= 0 {
		files = files[:MetricsFD+1]
		files[MetricsFD] = uintptr(metricsFD)
	}
	return files
}

// migrateReqPath is the sysctl that makes Linux move the connections queued
// on a closed SO_REUSEPORT socket to another socket of its group.
const migrateReqPath = "/proc/sys/net/ipv4/tcp_migrate_req"

// kernelMigratesQueue reports whether net.ipv4.tcp_migrate_req is 1.
func kernelMigratesQueue() bool {
	b, err := os.ReadFile(migrateReqPath)
	return err == nil && len(b) > 0 && b[0] == '1'
}

// bindSockets binds n SO_REUSEPORT listening sockets to listen. With port 0
// the first socket picks the port and the others bind to it. It returns the
// sockets and the address they share.
func bindSockets(listen string, n int) (socks []int, addr net.Addr, err error) {
	want, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	if want.Port != 0 {
		if err := probeFree(listen); err != nil {
			return nil, nil, err
		}
	}
	socks, err = bindMore(listen, n)
	if err != nil {
		return nil, nil, err
	}
	return socks, addrOf(socks[0]), nil
}

// bindMore binds n more SO_REUSEPORT sockets to listen. With port 0 the
// first one picks the port and the others bind to it.
func bindMore(listen string, n int) (socks []int, err error) {
	for i := range n {
		sock, got, err := listenReusePort(listen)
		if err != nil {
			closeSockets(socks)
			return nil, fmt.Errorf("bind socket %d: %w", i, err)
		}
		socks = append(socks, sock)
		if i == 0 {
			host, _, _ := net.SplitHostPort(listen)
			listen = net.JoinHostPort(host, strconv.Itoa(got.(*net.TCPAddr).Port))
		}
	}
	return socks, nil
}

// addrOf returns the local address of a listening socket, or nil.
func addrOf(sock int) net.Addr {
	sa, err := unix.Getsockname(sock)
	if err != nil {
		return nil
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	}
	return nil
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
// copy of it as a bare descriptor. The master never accepts, so it keeps
// its copies away from the runtime poller, and away from os.File, whose Fd
// would clear the O_NONBLOCK flag the workers share.
func listenReusePort(listen string) (int, net.Addr, error) {
	l, err := reuseport.Listen("tcp", listen)
	if err != nil {
		return -1, nil, listenError(listen, err)
	}
	defer l.Close()
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return -1, nil, fmt.Errorf("listen %s: got %T, want a TCP listener", listen, l)
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return -1, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	sock, dupErr := -1, error(nil)
	err = raw.Control(func(fd uintptr) {
		sock, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil && dupErr != nil {
		err = os.NewSyscallError("fcntl", dupErr)
	}
	if err != nil {
		return -1, nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	return sock, l.Addr(), nil
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

func closeSockets(socks []int) {
	for _, fd := range socks {
		unix.Close(fd)
	}
}
