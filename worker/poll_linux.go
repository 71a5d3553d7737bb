package worker

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The epoll events the loop asks for and is told of, named once.
const (
	readEvents  = unix.EPOLLIN  // interest in input, the end of stream, or a connection to accept
	writeEvents = unix.EPOLLOUT // interest in room to send pending answers
)

// isReadEvent reports input to read: bytes, the peer's end of stream, or a
// connection to accept.
func isReadEvent(ev uint32) bool { return ev&readEvents != 0 }

// isWriteEvent reports room in the socket's send buffer.
func isWriteEvent(ev uint32) bool { return ev&writeEvents != 0 }

// isErrorEvent reports an error pending on the socket; epoll reports it
// whether or not it was asked for.
func isErrorEvent(ev uint32) bool { return ev&unix.EPOLLERR != 0 }

// isHangup reports that both directions are shut; epoll reports it whether or
// not it was asked for, and again on every wait while it lasts.
func isHangup(ev uint32) bool { return ev&unix.EPOLLHUP != 0 }

// poller is a level-triggered epoll instance.
type poller struct {
	fd     int
	events []unix.EpollEvent
}

func newPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &poller{fd: fd, events: make([]unix.EpollEvent, 256)}, nil
}

func (p *poller) control(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(p.fd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (p *poller) add(fd int, events uint32) error { return p.control(unix.EPOLL_CTL_ADD, fd, events) }
func (p *poller) mod(fd int, events uint32) error { return p.control(unix.EPOLL_CTL_MOD, fd, events) }
func (p *poller) del(fd int) error                { return p.control(unix.EPOLL_CTL_DEL, fd, 0) }

// wait blocks for up to msec milliseconds and returns the ready events. An
// interrupted wait returns no events and no error.
func (p *poller) wait(msec int) ([]unix.EpollEvent, error) {
	n, err := unix.EpollWait(p.fd, p.events, msec)
	if err == unix.EINTR {
		return nil, nil
	}
	if err != nil {
		return nil, os.NewSyscallError("epoll_wait", err)
	}
	return p.events[:n], nil
}

func (p *poller) close() error {
	return os.NewSyscallError("close", unix.Close(p.fd))
}

// waker is an eventfd other goroutines use to wake the loop. signalled spares
// the write while a wake-up is already pending.
type waker struct {
	mu        sync.Mutex // guards fd against close while another goroutine writes
	fd        int
	signalled atomic.Bool
}

func (k *waker) open() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	k.mu.Lock()
	k.fd = fd
	k.signalled.Store(false) // a wake before the loop existed wrote nothing
	k.mu.Unlock()
	return nil
}

// wake makes the loop's next wait return. Safe from any goroutine, and a no-op
// before the loop starts or after it stops.
func (k *waker) wake() {
	if !k.signalled.CompareAndSwap(false, true) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fd < 0 {
		return
	}
	one := [8]byte{1}
	for {
		// EAGAIN means the counter is already non-zero: the loop will wake.
		if _, err := unix.Write(k.fd, one[:]); err != unix.EINTR {
			return
		}
	}
}

// reset consumes a wake-up. The loop calls it before collecting what woke it,
// so anything signalled afterwards wakes it again.
func (k *waker) reset() {
	var buf [8]byte
	_, _ = readFD(k.fd, buf[:])
	k.signalled.Store(false)
}

func (k *waker) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	fd := k.fd
	k.fd = -1
	return os.NewSyscallError("close", unix.Close(fd))
}
