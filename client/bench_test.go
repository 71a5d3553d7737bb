//go:build linux

package client

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// BenchmarkPing compares a ping through the balancer (pick, retry budget,
// in-flight counts) with the path of a single-address client: a deadline,
// the request encoded, written to its one connection, and the answer awaited.
// Besides wall time per call it reports cpu-ns/op, the process's user and
// system CPU time per call (client and in-process server together), which
// other load on the machine disturbs less.
func BenchmarkPing(b *testing.B) {
	balancer, direct := pingPaths(b)
	for _, path := range []struct {
		name string
		call func() error
	}{{"balancer", balancer}, {"direct", direct}} {
		b.Run(path.name, func(b *testing.B) {
			b.SetParallelism(8)
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := path.call(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// pingPaths dials an in-process host over one connection and returns the
// two ways the benchmarks ping it: through the balancer, and by the path of
// a single-address client.
func pingPaths(b *testing.B) (balancer, direct func() error) {
	h := startHost(b)
	c, err := Dial(h.addr, Options{Conns: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	params := []byte(`"bench"`)
	s := (*c.eps.Load())[0].slots[0]
	balancer = func() error {
		_, _, err := c.Call(ctx, "ping", params)
		return err
	}
	direct = func() error {
		ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
		frame := protocol.AppendRequest(nil, protocol.LittleEndian, "ping", params)
		p, err := s.send(ctx, frame)
		if err != nil {
			return err
		}
		<-p.done
		return p.err
	}
	return balancer, direct
}

// BenchmarkPingPaired runs the two paths of BenchmarkPing in alternating
// blocks of calls, so that both meet the same load on the machine, and
// reports each path's wall and CPU time per call and their ratios: the
// balancer's cost as a fraction of the direct path. b.N calls go each way.
func BenchmarkPingPaired(b *testing.B) {
	balancer, direct := pingPaths(b)
	paths := [2]func() error{balancer, direct}
	const block, callers = 2000, 16
	var wall, cpu [2]time.Duration
	b.ResetTimer()
	for round, done := 0, 0; done < b.N; round, done = round+1, done+block {
		n := min(block, b.N-done)
		for k := range paths {
			k = (k + round) % 2 // each path goes first every other round
			start, startCPU := time.Now(), cpuTime(b)
			if err := callConcurrently(callers, n, paths[k]); err != nil {
				b.Fatal(err)
			}
			wall[k] += time.Since(start)
			cpu[k] += cpuTime(b) - startCPU
		}
	}
	perCall := func(d time.Duration) float64 { return float64(d) / float64(b.N) }
	b.ReportMetric(perCall(wall[0]), "balancer-ns/call")
	b.ReportMetric(perCall(wall[1]), "direct-ns/call")
	b.ReportMetric(perCall(cpu[0]), "balancer-cpu-ns/call")
	b.ReportMetric(perCall(cpu[1]), "direct-cpu-ns/call")
	b.ReportMetric(float64(wall[0])/float64(wall[1]), "wall-ratio")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
}

// callConcurrently makes n calls of call from callers goroutines, and
// returns the first error.
func callConcurrently(callers, n int, call func() error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := call(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// reportCPU reads the process's CPU time, and returns a func that reports
// the CPU time spent since then per b.N as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

// cpuTime is the user plus system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
