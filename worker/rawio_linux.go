package worker

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// readFD and writeFD are read(2) and write(2), once each, without the
// scheduler's syscall hand-off (entersyscall/exitsyscall), which a worker's
// CPU profile shows on every read and write. They are only for non-blocking
// descriptors: a raw call keeps its P for its whole duration, and these never
// wait. An interrupted call is retried; n is never negative.
func readFD(fd int, b []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, b) }
func writeFD(fd int, b []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, b) }

func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	for {
		n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(p), uintptr(len(b)))
		switch errno {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}
