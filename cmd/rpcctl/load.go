package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpcd/rpcd/client"
)

// loadResult is what one load test measured.
type loadResult struct {
	elapsed   time.Duration
	latencies []time.Duration // one per successful call, sorted
	failed    int
	codes     map[string]int // failures by error code, or "transport"
}

// loadTest makes cfg.n calls from cfg.c goroutines and prints a summary.
func loadTest(c *client.Client, cfg *config, stdout, stderr io.Writer) int {
	res := measure(c, cfg)
	printLoad(stdout, cfg, res)
	if res.failed > 0 {
		fmt.Fprintf(stderr, "rpcctl: %d of %d calls failed: %v\n", res.failed, cfg.n, res.codes)
		return 1
	}
	return 0
}

func measure(c *client.Client, cfg *config) loadResult {
	var next atomic.Int64
	var mu sync.Mutex
	res := loadResult{codes: map[string]int{}}
	var wg sync.WaitGroup
	began := time.Now()
	for range cfg.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			codes := map[string]int{}
			for next.Add(1) <= int64(cfg.n) {
				t0 := time.Now()
				_, _, err := c.Call(context.Background(), cfg.method, cfg.params)
				if err != nil {
					codes[failureCode(err)]++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			for k, v := range codes {
				res.codes[k] += v
				res.failed += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(began)
	slices.Sort(res.latencies)
	return res
}

func failureCode(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "transport"
}

func printLoad(w io.Writer, cfg *config, res loadResult) {
	ok := len(res.latencies)
	fmt.Fprintf(w, "%d calls of %s in %v from %d callers on %d connections: %.0f calls/s, %d failed\n",
		cfg.n, cfg.method, res.elapsed.Round(time.Millisecond), cfg.c, cfg.conns,
		float64(cfg.n)/res.elapsed.Seconds(), res.failed)
	if ok == 0 {
		return
	}
	pct := func(p float64) time.Duration { return res.latencies[min(ok-1, int(p*float64(ok)))] }
	fmt.Fprintf(w, "latency p50 %v  p90 %v  p99 %v  max %v\n",
		pct(0.50), pct(0.90), pct(0.99), res.latencies[ok-1])
}
