// Package workertest runs a worker.Worker inside a test process, on a
// listening socket of its own on 127.0.0.1, for tests of code that talks to a
// worker (clients, tools). It is for tests only.
package workertest

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
)

// stopLimit bounds how long the cleanup waits for Serve to return.
const stopLimit = 10 * time.Second

// Start serves reg with cfg on a free 127.0.0.1 port, waits until the loop
// runs, and returns the address. When the test ends the worker is shut down
// and Serve must return nil within stopLimit. Cleanups the caller registers
// after Start run before that shutdown.
func Start(t testing.TB, cfg worker.Config, reg *rpc.Registry) string {
	t.Helper()
	lfd, addr := listen(t)
	w, err := worker.New(cfg, reg, nil)
	if err != nil {
		syscall.Close(lfd)
		t.Fatal(err)
	}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- w.Serve(lfd, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		w.Shutdown()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(stopLimit):
			t.Error("Serve did not return")
		}
	})
	return addr
}

// listen opens a listening socket on 127.0.0.1 and returns a descriptor of
// it that Serve may own, with its address.
func listen(t testing.TB) (int, string) {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A copy the *os.File's finalizer cannot close under Serve.
	lfd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return lfd, l.Addr().String()
}
