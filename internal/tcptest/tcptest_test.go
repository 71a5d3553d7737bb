package tcptest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestServeEchoes(t *testing.T) {
	addr := Serve(t, func(c net.Conn) { io.Copy(c, c) })
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v; want the echo of ping", got, err)
	}
}

func TestSilentNeverAnswers(t *testing.T) {
	addr := Serve(t, Silent(t))
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("read %d bytes, %v; want a timeout with nothing read", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFreeAddrRefuses(t *testing.T) {
	c, err := net.DialTimeout("tcp", FreeAddr(t), 10*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("dial to a free address connected")
	}
}
