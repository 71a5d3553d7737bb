// Package tcptest runs throwaway TCP servers on 127.0.0.1 for tests. A
// server hands each connection it accepts to a function of the test; its
// listener closes when the test ends, and so does every connection once its
// function has returned.
package tcptest

import (
	"net"
	"testing"
)

// Serve listens on 127.0.0.1:0 and runs serve on each connection it
// accepts, in a goroutine of its own, closing the connection when serve
// returns. It returns the listener's address.
func Serve(t testing.TB, serve func(net.Conn)) net.Addr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr()
}

// Silent returns a serve function that keeps its connection open and never
// answers, as a frozen peer does, until the test ends.
func Silent(t testing.TB) func(net.Conn) {
	ended := make(chan struct{})
	t.Cleanup(func() { close(ended) })
	return func(net.Conn) { <-ended }
}

// FreeAddr returns a 127.0.0.1 address on which nothing listens when it
// returns: a dial to it is refused, and a test may bind it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
