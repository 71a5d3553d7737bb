package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// flakyMetrics serves a small /metrics whose request counter grows by 10
// per scrape, failing the scrapes whose numbers (from 1) fail lists.
type flakyMetrics struct {
	mu    sync.Mutex
	calls int
	fail  map[int]bool
}

func (f *flakyMetrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if f.fail[n] {
		http.Error(w, "re-binding", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "# TYPE rpcd_generation gauge\nrpcd_generation 1\n# TYPE rpcd_ready gauge\nrpcd_ready 1\n"+
		"# TYPE rpcd_requests_total counter\nrpcd_requests_total{code=\"ok\",method=\"ping\",slot=\"0\"} %d\n"+
		"# TYPE rpcd_worker_exits_total counter\nrpcd_worker_exits_total{cause=\"clean\",slot=\"0\"} 5\n"+
		"rpcd_worker_exits_total{cause=\"crash\",slot=\"0\"} 2\n"+
		"rpcd_worker_exits_total{cause=\"killed\",slot=\"0\"} 1\n"+
		"# TYPE rpcd_worker_starts_total counter\nrpcd_worker_starts_total{cause=\"rollout\",slot=\"0\"} 9\n", 10*n)
}

// A failed scrape, as while an upgrade re-binds the endpoint, is shown and
// retried; stats carries on and exits 0.
func TestStatsCarriesOnPastFailedScrapes(t *testing.T) {
	f := &flakyMetrics{fail: map[int]bool{1: true, 3: true}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"stats", "-metrics=" + strings.TrimPrefix(srv.URL, "http://"), "-n", "4", "-interval", "20ms"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("stats exited %d: %s\n%s", code, stderr.String(), out)
	}
	if n := strings.Count(out, "scrape failed: "); n != 2 {
		t.Fatalf("%d failed scrapes shown, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "RESTARTS"); n != 2 {
		t.Fatalf("%d tables, want 2 (after scrapes 4 and 5):\n%s", n, out)
	}
	for _, line := range strings.Split(out, "\n") {
		// Slot 0's row: restarts are its crashes and kills, not its starts.
		if f := strings.Fields(line); len(f) == 8 && f[0] == "0" && f[7] != "3" {
			t.Fatalf("restarts %s, want 3:\n%s", f[7], out)
		}
	}
}

// With -n, stats fails only when no scrape succeeded.
func TestStatsFailsWhenEveryScrapeFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	if code := run([]string{"stats", "-metrics=" + addr, "-n", "2", "-interval", "20ms"}, &stdout, &stderr); code != 1 {
		t.Fatalf("stats exited %d, want 1:\n%s", code, stdout.String())
	}
	if n := strings.Count(stdout.String(), "scrape failed: "); n != 3 {
		t.Fatalf("%d failed scrapes shown, want 3:\n%s", n, stdout.String())
	}
}
