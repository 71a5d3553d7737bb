// Package waitfor is the one way rpcd's tests wait for a condition: poll it
// at a fixed interval, bounded by a timeout, instead of sleeping a guessed
// settle time.
package waitfor

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 10 * time.Millisecond

// Poll calls cond every Interval until it holds or timeout has passed, and
// reports whether it held. cond runs at least once, and once more at the
// deadline.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(Interval)
	}
	return cond()
}

// Until polls cond like Poll and fails the test, naming what it waited for,
// if cond does not hold within timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
