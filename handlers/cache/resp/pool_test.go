package resp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeRedis answers every read from a connection with reply, on a
// 127.0.0.1 listener.
func fakeRedis(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						return
					}
					if _, err := conn.Write([]byte(reply)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A connection whose replies were all read goes back to the pool; one that
// broke is closed, and the next Get dials anew.
func TestPoolKeepsOnlyHealthyConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := NewPool(Options{Addr: fakeRedis(t, "+PONG\r\n"), DialTimeout: time.Second, IOTimeout: time.Second}, 2)
	defer p.Close()
	ping := func(c *Conn) {
		c.Begin(1)
		c.ArgString("PING")
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Read(); err != nil || describe(r) != "status PONG" {
			t.Fatalf("PING: %s, %v", describe(r), err)
		}
	}
	first, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ping(first)
	p.Put(first)
	again, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatal("a healthy connection was not reused")
	}
	again.fail(errors.New("broken on purpose"))
	p.Put(again)
	fresh, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == first {
		t.Fatal("a broken connection was reused")
	}
	ping(fresh)
	p.Put(fresh)
}

// Bytes left over after the replies asked for break the connection, so it
// is not reused out of step.
func TestDiscardBreaksOnUnreadBytes(t *testing.T) {
	for _, tt := range []struct {
		in     string
		broken bool
	}{
		{in: "+OK\r\n", broken: false},
		{in: "+OK\r\n+OK\r\n", broken: true},
	} {
		c := newTestConn(tt.in, 64, 16)
		if _, err := c.Read(); err != nil {
			t.Fatal(err)
		}
		c.Discard()
		if got := c.Err() != nil; got != tt.broken {
			t.Fatalf("%q: broken %v, want %v", tt.in, got, tt.broken)
		}
	}
}

func TestPoolClosed(t *testing.T) {
	p := NewPool(Options{Addr: "127.0.0.1:1"}, 1)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get on a closed pool: %v, want ErrClosed", err)
	}
}
