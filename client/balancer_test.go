//go:build linux

package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// host is an in-process worker that counts the calls it ran.
type host struct {
	addr  string
	calls atomic.Int64
	stop  func() error
}

func startHost(t testing.TB) *host { return startHostConfig(t, worker.Config{}) }

// startHostConfig starts a host with cfg.
func startHostConfig(t testing.TB, cfg worker.Config) *host {
	t.Helper()
	h := &host{}
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, func(_ context.Context, params []byte, rep *rpc.Reply) error {
		h.calls.Add(1)
		rep.SetOut("pong")
		rep.SetRaw(params)
		return nil
	})
	reg.Register("sleep", rpc.Blocking, func(_ context.Context, params []byte, rep *rpc.Reply) error {
		h.calls.Add(1)
		time.Sleep(2 * time.Millisecond) // the work of a blocking method
		rep.SetOut("slept")
		rep.SetRaw(params)
		return nil
	})
	addr, stop, err := workertest.Serve(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	h.addr, h.stop = addr, sync.OnceValue(stop)
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// manual is a Resolver whose list the test sets.
type manual struct{ lists chan []discovery.Endpoint }

func newManual() *manual { return &manual{lists: make(chan []discovery.Endpoint, 8)} }

func (m *manual) Watch(ctx context.Context, update func([]discovery.Endpoint)) {
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-m.lists:
			update(l)
		}
	}
}

func (m *manual) Refresh() {}

func newT(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedLoop runs workers goroutines calling method until each made n calls,
// and returns the calls that failed with their first error.
func closedLoop(c *Client, workers, n int, method string, opts ...CallOption) (int64, error) {
	var failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				want := fmt.Sprintf(`"%d-%d"`, g, i)
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				_, result, err := c.Call(ctx, method, []byte(want), opts...)
				cancel()
				if err == nil && string(result) != want {
					err = fmt.Errorf("answer %s to %s", result, want)
				}
				if err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	err, _ := first.Load().(error)
	return failed.Load(), err
}

// Calls are shared out in proportion to the weights, each share within 5 %
// of its due (relative: 0.500 ± 0.025) when the weights are the hosts'
// capacities as rpcd registers them (its worker count; here, the size of
// each host's pool of blocking handlers), and within 15 % when the hosts are
// alike and only the weights differ: this load keeps them all busy, and the
// balancer, seeing the heavier-weighted host's calls wait longer, rightly
// sends the lighter ones a little more (docs/scale-out.md). A light load
// follows the weights exactly (TestRegistryWeights in cmd/rpcd).
func TestWeightsFollowed(t *testing.T) {
	weights := []int{1, 2, 3}
	for _, tc := range []struct {
		name      string
		pools     []int
		tolerance float64 // relative
	}{
		{name: "capacities 1:2:3", pools: []int{1, 2, 3}, tolerance: 0.05},
		{name: "equal capacities", pools: []int{16, 16, 16}, tolerance: 0.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hosts []*host
			var list []discovery.Endpoint
			for i, w := range weights {
				h := startHostConfig(t, worker.Config{PoolSize: tc.pools[i]})
				hosts = append(hosts, h)
				list = append(list, discovery.Endpoint{Addr: h.addr, Weight: w})
			}
			c := newT(t, Options{Resolver: discovery.Static(list...)})
			const workers, n = 12, 600
			if failed, err := closedLoop(c, workers, n, "sleep"); failed != 0 {
				t.Fatalf("%d calls failed, first: %v", failed, err)
			}
			total := float64(workers * n)
			for i, h := range hosts {
				share := float64(h.calls.Load()) / total
				want := float64(weights[i]) / 6
				t.Logf("weight %d: %.3f of the calls, want %.3f", weights[i], share, want)
				if share < want*(1-tc.tolerance) || share > want*(1+tc.tolerance) {
					t.Errorf("weight %d got %.3f of the calls, want %.3f ±%.0f %%", weights[i], share, want, 100*tc.tolerance)
				}
			}
		})
	}
}

// A host that drains says goodbye: calls that are not idempotent go to the
// others and none fails.
func TestDrainLosesNoCall(t *testing.T) {
	hosts := []*host{startHost(t), startHost(t), startHost(t)}
	c := newT(t, Options{Resolver: discovery.Static(
		discovery.Endpoint{Addr: hosts[0].addr}, discovery.Endpoint{Addr: hosts[1].addr}, discovery.Endpoint{Addr: hosts[2].addr})})
	type result struct {
		failed int64
		err    error
	}
	done := make(chan result, 1)
	go func() {
		failed, err := closedLoop(c, 16, 400, "sleep")
		done <- result{failed, err}
	}()
	waitfor.Until(t, waitLimit, "calls on the first host", func() bool { return hosts[0].calls.Load() > 100 })
	if err := hosts[0].stop(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.failed != 0 {
		t.Fatalf("%d calls failed, first: %v", r.failed, r.err)
	}
}

// A refused endpoint is ejected and calls carry on elsewhere; it is back in
// the picks once it answers a ping again.
func TestRefusedEndpointEjected(t *testing.T) {
	down := tcptest.FreeAddr(t)
	up1, up2 := startHost(t), startHost(t)
	c := newT(t, Options{Resolver: discovery.Static(
		discovery.Endpoint{Addr: down}, discovery.Endpoint{Addr: up1.addr}, discovery.Endpoint{Addr: up2.addr})})
	if failed, err := closedLoop(c, 4, 200, "ping"); failed != 0 {
		t.Fatalf("%d calls failed, first: %v", failed, err)
	}
	var ejected *endpoint
	for _, e := range *c.eps.Load() {
		if e.addr == down {
			ejected = e
		}
	}
	if !ejected.ejected.Load() {
		t.Fatal("the refused endpoint is not ejected")
	}
	// Bring it back on the same port.
	back, err := net.Listen("tcp", down)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", down, err)
	}
	defer back.Close()
	go serveFakePings(back)
	waitfor.Until(t, waitLimit, "the endpoint back in the picks", func() bool { return !ejected.ejected.Load() })
}

// serveFakePings answers every request on l with pong, as a server without
// the goodbye.
func serveFakePings(l net.Listener) {
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			f := &fakeServer{}
			f.serveOne(nc, false)
		}()
	}
}

// The only endpoint is never ejected, and a client with no endpoints waits
// for one instead of failing.
func TestEmptyListWaits(t *testing.T) {
	m := newManual()
	c := newT(t, Options{Resolver: m})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Call(ctx, "ping", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with no endpoint: %v, want its deadline", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Call(context.Background(), "ping", []byte(`1`))
		errc <- err
	}()
	h := startHost(t)
	m.lists <- []discovery.Endpoint{{Addr: h.addr}}
	if err := <-errc; err != nil {
		t.Fatalf("waiting call: %v", err)
	}
	m.lists <- nil
	waitfor.Until(t, waitLimit, "the list emptied", func() bool { return len(*c.eps.Load()) == 0 })
}
