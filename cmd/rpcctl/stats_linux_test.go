package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/rpc"
)

// TestMain lets stats tests run this binary as a real rpcd.
func TestMain(m *testing.M) { rpcdtest.Main(m, rpcdMain) }

func rpcdMain() {
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	cmd.Main(reg)
}

// startRPCD runs rpcd with two workers and its metrics endpoint, and
// returns the addresses it logs: the RPC listener and the endpoint.
func startRPCD(t *testing.T) (addr, metrics string) {
	t.Helper()
	c := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0", "-workers=2", "-log-format=json", "-metrics-listen=127.0.0.1:0")
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
	})
	found := make(chan [2]string, 1)
	go func() {
		var got [2]string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var e struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			switch e.Msg {
			case "master ready":
				got[0] = e.Addr
			case "serving metrics":
				got[1] = e.Addr
			}
			if got[0] != "" && got[1] != "" {
				found <- got
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
	}()
	select {
	case got := <-found:
		return got[0], got[1]
	case <-time.After(30 * time.Second):
		t.Fatal("rpcd logged no listener and metrics addresses in 30s")
	}
	return "", ""
}

func TestStatsAgainstRPCD(t *testing.T) {
	addr, metrics := startRPCD(t)
	c, err := client.Dial(addr, client.Options{Conns: 4, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // traffic while stats watches, bounded in count and time
		defer wg.Done()
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; i < 1e6 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Call(context.Background(), "ping", []byte(`"x"`))
			if i%10 == 0 {
				c.Call(context.Background(), "nosuch", nil)
			}
		}
	}()
	var stdout, stderr bytes.Buffer
	code := run([]string{"stats", "-metrics=" + metrics, "-n", "2", "-interval", "300ms"}, &stdout, &stderr)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("stats exited %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if n := strings.Count(out, "RESTARTS"); n != 2 {
		t.Fatalf("%d tables, want 2:\n%s", n, out)
	}
	var rows, busy int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || f[0] == "SLOT" {
			continue
		}
		rows++
		rps, _ := strconv.ParseFloat(f[2], 64)
		errs, _ := strconv.ParseFloat(f[3], 64)
		if rps > 0 && errs > 0 && f[4] != "-" && f[5] != "-" && f[1] == "1" {
			busy++
		}
	}
	if rows != 4 || busy == 0 {
		t.Fatalf("%d slot rows (want 2 per table), %d with requests, errors and latencies:\n%s", rows, busy, out)
	}
	t.Logf("rpcctl stats:\n%s", out)
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	prev := map[float64]float64{0.001: 10, 0.01: 10, inf: 10}
	tests := []struct {
		name string
		q    float64
		cur  map[float64]float64
		want float64
	}{
		{"half in the first bucket", 0.5, map[float64]float64{0.001: 110, 0.01: 110, inf: 110}, 0.0005},
		{"spread over two", 0.99, map[float64]float64{0.001: 60, 0.01: 110, inf: 110}, 0.001 + 0.009*49/50},
		{"above every bound", 0.5, map[float64]float64{0.001: 10, 0.01: 10, inf: 20}, 0.01},
		{"nothing new", 0.5, prev, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quantile(tt.q, prev, tt.cur)
			if math.IsNaN(tt.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("quantile %v = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}
