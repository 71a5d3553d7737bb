//go:build linux

package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// workHost serves "work", which answers code ("" for a success), and
// counts the calls it got.
func workHost(t *testing.T, code string) (addr string, calls *atomic.Int64) {
	t.Helper()
	calls = new(atomic.Int64)
	reg := rpc.NewRegistry()
	if code != protocol.CodeUnknownMethod {
		reg.Register("work", rpc.Inline, func(_ context.Context, params []byte, rep *rpc.Reply) error {
			calls.Add(1)
			if code != "" {
				return protocol.Errorf(code, "answered %s", code)
			}
			rep.SetOut("done")
			rep.SetRaw(params)
			return nil
		})
	}
	return workertest.Start(t, worker.Config{}, reg), calls
}

// A call answered overloaded is retried on the other endpoint and
// succeeds; one answered unavailable, internal, bad_request or
// unknown_method is not retried: each call reaches exactly one endpoint.
func TestRetryRules(t *testing.T) {
	const n = 200
	for _, tt := range []struct {
		code    string
		retried bool
	}{
		{code: protocol.CodeOverloaded, retried: true},
		{code: protocol.CodeUnavailable},
		{code: protocol.CodeInternal},
		{code: protocol.CodeBadRequest},
		{code: protocol.CodeUnknownMethod},
	} {
		t.Run(tt.code, func(t *testing.T) {
			bad, badCalls := workHost(t, tt.code)
			good, goodCalls := workHost(t, "")
			// One call in twenty reaches the bad endpoint, well within the
			// retry budget (ten, and a tenth of a retry per call).
			c := newT(t, Options{Resolver: discovery.Static(discovery.Endpoint{Addr: bad, Weight: 1}, discovery.Endpoint{Addr: good, Weight: 19})})
			var failed int
			for i := range n {
				_, _, err := c.Call(context.Background(), "work", []byte(fmt.Sprint(i)))
				var e *Error
				switch {
				case err == nil:
				case errors.As(err, &e) && e.Code == tt.code:
					failed++
				default:
					t.Fatalf("call %d: %v", i, err)
				}
			}
			reached := badCalls.Load() + goodCalls.Load()
			if tt.code == protocol.CodeUnknownMethod {
				reached += int64(failed) // the method is not there to count them
			}
			if tt.retried {
				if failed != 0 || badCalls.Load() == 0 || goodCalls.Load() != n {
					t.Fatalf("%d failed, bad host %d, good host %d calls; want 0 failed, all %d answered by the good host after a retry",
						failed, badCalls.Load(), goodCalls.Load(), n)
				}
				return
			}
			if failed == 0 || reached != n {
				t.Fatalf("%d failed, %d attempts reached the hosts; want some failed and exactly %d attempts", failed, reached, n)
			}
		})
	}
}

// Against endpoints that answer overloaded to everything, retries stay
// within the budget: ten to begin with and a tenth of a retry per call.
func TestRetryBudget(t *testing.T) {
	const n = 1000
	a, aCalls := workHost(t, protocol.CodeOverloaded)
	b, bCalls := workHost(t, protocol.CodeOverloaded)
	c := newT(t, Options{Resolver: discovery.Static(discovery.Endpoint{Addr: a, Weight: 1}, discovery.Endpoint{Addr: b, Weight: 1})})
	for i := range n {
		if _, _, err := c.Call(context.Background(), "work", []byte(fmt.Sprint(i))); err == nil {
			t.Fatalf("call %d succeeded against two overloaded hosts", i)
		}
	}
	attempts := aCalls.Load() + bCalls.Load()
	if limit := int64(n + 10 + n/10 + 1); attempts > limit {
		t.Fatalf("%d attempts for %d calls; the budget allows at most %d", attempts, n, limit)
	}
	if attempts == n {
		t.Fatal("no call was retried at all")
	}
}

// A negative Options.Retries turns retries off.
func TestRetriesOff(t *testing.T) {
	const n = 100
	bad, badCalls := workHost(t, protocol.CodeOverloaded)
	good, goodCalls := workHost(t, "")
	c := newT(t, Options{Resolver: discovery.Static(discovery.Endpoint{Addr: bad, Weight: 1}, discovery.Endpoint{Addr: good, Weight: 1}), Retries: -1})
	var failed int64
	for i := range n {
		if _, _, err := c.Call(context.Background(), "work", []byte(fmt.Sprint(i))); err != nil {
			failed++
		}
	}
	if failed == 0 || failed != badCalls.Load() || badCalls.Load()+goodCalls.Load() != n {
		t.Fatalf("%d failed, bad host %d, good host %d; want every call that reached the bad host failed, no retry",
			failed, badCalls.Load(), goodCalls.Load())
	}
}
