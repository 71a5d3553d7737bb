package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// blackholed returns a 127.0.0.1 address whose accept queue is full and
// never drained: the kernel drops new SYNs, so a connect to it hangs until
// its timeout.
func blackholed(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(os.NewSyscallError("socket", err))
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(os.NewSyscallError("bind", err))
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(os.NewSyscallError("listen", err))
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(os.NewSyscallError("getsockname", err))
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: connects succeed until it is full, then one hangs.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s still accepts connections after 8 connects", addr)
	return ""
}

func TestTimeoutCoversConnect(t *testing.T) {
	addr := blackholed(t)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	exit := run([]string{"-addr", addr, "-timeout", "300ms", "call", "ping"}, &stdout, &stderr)
	elapsed := time.Since(start)
	if exit != 1 || !strings.Contains(stderr.String(), "timeout") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and a timeout", exit, stderr.String())
	}
	// The client's own dial timeout is 5s; -timeout must cut it short.
	if elapsed > 3*time.Second {
		t.Fatalf("rpcctl -timeout 300ms gave up after %v", elapsed)
	}
}
