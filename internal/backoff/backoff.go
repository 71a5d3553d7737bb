// Package backoff is the one retry schedule of rpcd's discovery and registry
// loops: a delay that doubles after each failure in a row up to a cap, every
// delay jittered by ±20 % so that many processes that failed together do not
// retry together, and a sleep that ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the jittered wait after the n-th failure in a row (n ≥ 1): base
// doubled n-1 times, capped at most.
func Delay(n int, base, most time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return Jitter(min(d, most))
}

// Jitter returns d scaled by a random factor in [0.8, 1.2].
func Jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Sleep waits d, or reports false if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
