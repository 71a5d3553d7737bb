package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

// Idle connections come from several loopback source addresses, so that the
// ephemeral ports of one address never run short.
const (
	idleSources  = 8 // 127.0.0.2 .. 127.0.0.9
	idleDialers  = 16
	idleIOTimout = 10 * time.Second
	// idleSettle lets the servers finish the work the last connections caused
	// (a worker's accept batch, a goroutine's first read) before RSS is read.
	idleSettle = 500 * time.Millisecond
)

var (
	pingFrame = func() []byte {
		body := []byte(`{"in":"ping","params":"idle"}`)
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(body))), body...)
	}()
	redisPing = []byte("*1\r\n$4\r\nPING\r\n")
)

// measureIdle measures, for each server freshly started, the resident memory
// that o.idle open connections cost after each sent one ping.
func measureIdle(ctx context.Context, o options, bins binaries, work string, res *results) error {
	for _, name := range o.servers {
		perConn, err := idleCost(ctx, o, bins, work, name)
		if err != nil {
			return err
		}
		log.Printf("idle     %-8s %d connections: %.0f bytes each", name, o.idle, perConn)
		res.idle = append(res.idle, idleResult{name: name, bytesPerConn: perConn})
	}
	return nil
}

func idleCost(ctx context.Context, o options, bins binaries, work, name string) (float64, error) {
	s, err := startServer(ctx, o, bins, work, name)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	time.Sleep(idleSettle) // a freshly started server's runtime settles
	before, err := treeRSS(s.pid())
	if err != nil {
		return 0, err
	}
	conns, err := openIdle(s, o.idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return 0, err
	}
	time.Sleep(idleSettle)
	after, err := treeRSS(s.pid())
	if err != nil {
		return 0, err
	}
	log.Printf("idle     %-8s rss %d KiB before, %d KiB after", name, before>>10, after>>10)
	return float64(after-before) / float64(o.idle), nil
}

// openIdle opens n connections to s; each sends one ping and reads its answer.
func openIdle(s *server, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make(chan error, idleDialers)
	var wg sync.WaitGroup
	for d := range idleDialers {
		wg.Go(func() {
			for i := d; i < n; i += idleDialers {
				c, err := pingOnce(s, i)
				if err != nil {
					errs <- fmt.Errorf("idle connection %d to %s: %w", i, s.name, err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	close(errs)
	kept := conns[:0]
	for _, c := range conns {
		if c != nil {
			kept = append(kept, c)
		}
	}
	return kept, <-errs
}

// pingOnce connects from the i-th source address, pings, and reads the answer.
func pingOnce(s *server, i int) (net.Conn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%idleSources))}
	d := net.Dialer{LocalAddr: src, Timeout: idleIOTimout}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		return nil, err
	}
	err = c.SetDeadline(time.Now().Add(idleIOTimout))
	if err == nil {
		err = exchangePing(c, s.kind.redis)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func exchangePing(c net.Conn, redis bool) error {
	if redis {
		if _, err := c.Write(redisPing); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "+PONG\r\n" {
			err = fmt.Errorf("answer %q, want +PONG", line)
		}
		return err
	}
	if _, err := c.Write(pingFrame); err != nil {
		return err
	}
	var header [4]byte
	if _, err := io.ReadFull(c, header[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.LittleEndian.Uint32(header[:])))
	return err
}
