//go:build linux

package worker

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/rpc"
)

// A program whose handlers keep more live heap than the memory budget is not
// collected continuously under the limit the worker sets: over the same
// requests it collects about as often as with no limit at all, while a limit
// of the budget alone would collect at each request.
func TestMemoryLimitFollowsLiveHeap(t *testing.T) {
	const budget, retained, requests = 16 << 20, 64 << 20, 256
	prev := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	kept := make([]byte, retained) // what the program itself keeps live
	for i := range kept {
		kept[i] = byte(i)
	}
	var sink atomic.Pointer[[]byte] // both servers' loops write it
	reg := rpc.NewRegistry()
	reg.Register("garbage", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error {
		b := make([]byte, 1<<20) // left to the collector at the next call
		sink.Store(&b)
		return nil
	})
	collections := func(s *server) uint64 {
		c := dial(t, s.addr)
		sample := []rtmetrics.Sample{{Name: gcCyclesMetric}}
		rtmetrics.Read(sample)
		before := sample[0].Value.Uint64()
		for range requests {
			if out, _ := c.call("garbage", ""); out != "" {
				t.Fatalf("garbage answered %q", out)
			}
		}
		rtmetrics.Read(sample)
		return sample[0].Value.Uint64() - before
	}

	off := collections(startServer(t, Config{MaxBuffer: budget}, reg, newGates(), zapcore.InfoLevel))
	s := startServer(t, Config{MaxBuffer: budget, ManageMemoryLimit: true}, reg, newGates(), zapcore.InfoLevel)
	runtime.GC()
	waitfor.Until(t, waitLimit, "the limit to follow the live heap", func() bool {
		return debug.SetMemoryLimit(-1) >= budget+retained
	})
	on := collections(s)
	if on > off+requests/4 {
		t.Fatalf("%d requests made %d collections under the worker's limit, %d with none", requests, on, off)
	}
	t.Logf("%d requests: %d collections under the worker's limit, %d with none", requests, on, off)
	runtime.KeepAlive(kept)
}
