// Package workertest runs a worker.Worker inside a test process, on a
// listening socket of its own on 127.0.0.1, for tests and examples of code
// that talks to a worker (clients, tools, methods). It is for tests only.
package workertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
)

// stopLimit bounds how long a stop waits for Serve to return.
const stopLimit = 10 * time.Second

// Start serves reg with cfg on a free 127.0.0.1 port, waits until the loop
// runs, and returns the address. When the test ends the worker is shut down
// and Serve must return nil within stopLimit. Cleanups the caller registers
// after Start run before that shutdown.
func Start(t testing.TB, cfg worker.Config, reg *rpc.Registry) string {
	t.Helper()
	addr, stop, err := Serve(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr
}

// Serve is Start for an example, which has no testing.TB: it returns the
// address and stop, which shuts the worker down and reports whether Serve
// returned nil within stopLimit.
func Serve(cfg worker.Config, reg *rpc.Registry) (addr string, stop func() error, err error) {
	w, err := worker.New(cfg, reg, nil)
	if err != nil {
		return "", nil, err
	}
	lfd, addr, err := listen()
	if err != nil {
		return "", nil, err
	}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- w.Serve(lfd, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		return "", nil, fmt.Errorf("serve: %w", err)
	}
	stop = func() error {
		w.Shutdown()
		select {
		case err := <-done:
			return err
		case <-time.After(stopLimit):
			return errors.New("serve did not return after shutdown")
		}
	}
	return addr, stop, nil
}

// listen opens a listening socket on 127.0.0.1 and returns a descriptor of
// it that Serve may own, with its address.
func listen() (int, string, error) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return -1, "", err
	}
	f, err := l.File()
	l.Close()
	if err != nil {
		return -1, "", fmt.Errorf("get listener descriptor: %w", err)
	}
	// A copy the *os.File's finalizer cannot close under Serve.
	lfd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1, "", os.NewSyscallError("dup", err)
	}
	return lfd, l.Addr().String(), nil
}
