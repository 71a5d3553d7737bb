package metrics

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Create makes a region in a new memfd, mapped shared, for the master to
// pass to its workers (FD) and to a master it re-executes. Its descriptor
// is close-on-exec.
func Create(methods []string, slots, blocks int) (*Region, error) {
	size := Size(methods, slots, blocks)
	fd, err := unix.MemfdCreate("rpcd-metrics", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create metrics region: %w", os.NewSyscallError("memfd_create", err))
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create metrics region: %w", os.NewSyscallError("ftruncate", err))
	}
	mem, err := mapShared(fd, size)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create metrics region: %w", err)
	}
	r, err := Format(mem, methods, slots, blocks)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, err
	}
	r.fd = fd
	return r, nil
}

// Open maps the region behind fd, which Create made in this process or a
// parent, and takes ownership of fd.
func Open(fd int) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("open metrics region: %w", os.NewSyscallError("fstat", err))
	}
	mem, err := mapShared(fd, int(st.Size))
	if err != nil {
		return nil, fmt.Errorf("open metrics region: %w", err)
	}
	r, err := Load(mem)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	r.fd = fd
	return r, nil
}

func mapShared(fd, size int) ([]byte, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return mem, nil
}

// FD is the region's memfd, -1 for a region over plain memory.
func (r *Region) FD() int { return r.fd }

// Close unmaps the region and closes its descriptor. The region must not
// be used after.
func (r *Region) Close() error {
	var err error
	if r.fd >= 0 {
		err = unix.Munmap(r.mem)
		if cerr := unix.Close(r.fd); err == nil {
			err = cerr
		}
	}
	return err
}
