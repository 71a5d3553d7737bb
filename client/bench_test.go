//go:build linux

package client

import (
	"context"
	"testing"

	"github.com/rpcd/rpcd/protocol"
)

// BenchmarkPing compares a ping through the balancer (pick, retry budget,
// in-flight counts) with the path of a single-address client: a deadline,
// the request encoded, written to its one connection, and the answer awaited.
func BenchmarkPing(b *testing.B) {
	h := startHost(b)
	c, err := Dial(h.addr, Options{Conns: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	params := []byte(`"bench"`)
	b.Run("balancer", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := c.Call(ctx, "ping", params); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("direct", func(b *testing.B) {
		s := (*c.eps.Load())[0].slots[0]
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
				frame := protocol.AppendRequest(nil, protocol.LittleEndian, "ping", params)
				p, err := s.send(ctx, frame)
				if err == nil {
					<-p.done
					err = p.err
				}
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
