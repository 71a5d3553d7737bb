//go:build linux

package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	rpcclient "github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/internal/waitfor"
)

// scaleLoad is a bounded closed loop of ping and fib(30) calls spread over
// several hosts by one client.
type scaleLoad struct {
	c        *rpcclient.Client
	logs     *observer.ObservedLogs
	answered atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value
	stopc    chan struct{}
	wg       sync.WaitGroup
}

// startHosts runs one rpcd with one worker on each of 127.0.0.2, .3 and .4.
func startHosts(t *testing.T) []*server {
	var hosts []*server
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		hosts = append(hosts, startServer(t, "-listen="+ip+":0", "-workers=1"))
	}
	return hosts
}

func startScaleLoad(t *testing.T, hosts []*server, idempotent bool) *scaleLoad {
	t.Helper()
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, h.addr)
	}
	return startTargetLoad(t, strings.Join(addrs, ","), idempotent)
}

// startTargetLoad runs the closed loop against target.
func startTargetLoad(t *testing.T, target string, idempotent bool) *scaleLoad {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	c, err := rpcclient.New(target, rpcclient.Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	l := &scaleLoad{c: c, logs: logs, stopc: make(chan struct{})}
	var opts []rpcclient.CallOption
	if idempotent {
		opts = append(opts, rpcclient.Idempotent())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for g := range 8 {
		l.wg.Add(1)
		go l.run(g, deadline, opts)
	}
	t.Cleanup(func() {
		l.stop()
		c.Close()
	})
	return l
}

func (l *scaleLoad) run(g int, deadline time.Time, opts []rpcclient.CallOption) {
	defer l.wg.Done()
	method, params := "ping", []byte(fmt.Sprintf(`"g%d"`, g))
	if g%2 == 1 {
		method, params = "fib", []byte(`30`)
	}
	for time.Now().Before(deadline) {
		select {
		case <-l.stopc:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := l.c.Call(ctx, method, params, opts...)
		cancel()
		if err != nil {
			l.failed.Add(1)
			l.firstErr.CompareAndSwap(nil, err)
			continue
		}
		l.answered.Add(1)
	}
}

func (l *scaleLoad) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// waitMore waits until n more calls have been answered.
func (l *scaleLoad) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := l.answered.Load() + n
	waitfor.Until(t, 30*time.Second, fmt.Sprintf("%d more answers", n), func() bool { return l.answered.Load() >= want })
}

func (l *scaleLoad) checkNoFailure(t *testing.T) {
	t.Helper()
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d calls failed, first: %v", n, n+l.answered.Load(), l.firstErr.Load())
	}
}

// waitClientLog waits for the client's log line msg about addr and returns
// how long it took from since.
func (l *scaleLoad) waitClientLog(t *testing.T, msg, addr string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	waitfor.Until(t, timeout, msg+" "+addr, func() bool {
		for _, e := range l.logs.FilterMessage(msg).All() {
			if e.ContextMap()["addr"] == addr && e.Time.After(since) {
				return true
			}
		}
		return false
	})
	return time.Since(since)
}

// A stop, a reload and an upgrade, each of one host of three, lose no call,
// idempotent or not: each host says goodbye before it closes.
func TestScaleGracefulEventsLoseNoCall(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			hosts := startHosts(t)
			l := startScaleLoad(t, hosts, idempotent)
			l.waitMore(t, 300)

			signal(t, hosts[0], syscall.SIGTERM)
			if code := hosts[0].waitExit(30 * time.Second); code != 0 {
				t.Fatalf("stopped host exited %d", code)
			}
			l.waitMore(t, 300)

			from := len(hosts[1].logs.all())
			signal(t, hosts[1], syscall.SIGHUP)
			waitLog(t, hosts[1], from, 30*time.Second, "reloaded generation ready", func(es []logEntry) bool {
				return countMsg(es, "new generation ready") > 0
			})
			l.waitMore(t, 300)

			from = len(hosts[2].logs.all())
			signal(t, hosts[2], syscall.SIGUSR2)
			waitLog(t, hosts[2], from, 60*time.Second, "upgraded generation ready", func(es []logEntry) bool {
				return findMsg(es, "new generation ready", "reason", "upgrade") != nil
			})
			l.waitMore(t, 300)
			l.stop()
			l.checkNoFailure(t)
			t.Logf("%d calls, none failed", l.answered.Load())
		})
	}
}

// kill -9 of a host fails at most the calls in flight on it (none when they
// are idempotent), and takes it out of the picks within a second.
func TestScaleKilledHost(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			hosts := startHosts(t)
			l := startScaleLoad(t, hosts, idempotent)
			l.waitMore(t, 300)
			killed := time.Now()
			if err := syscall.Kill(-hosts[0].pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			took := l.waitClientLog(t, "endpoint ejected", hosts[0].addr, killed, time.Second)
			l.waitMore(t, 300)
			l.stop()
			failed := l.failed.Load()
			t.Logf("ejected %v after the kill; %d of %d calls failed", took, failed, failed+l.answered.Load())
			if idempotent && failed != 0 || failed > 8 {
				t.Fatalf("%d calls failed (8 in flight at most), first: %v", failed, l.firstErr.Load())
			}
		})
	}
}

// A host stopped whole with SIGSTOP is found and ejected within about 3 s,
// and used again after SIGCONT; calls waiting on it are answered then.
func TestScaleFrozenHost(t *testing.T) {
	hosts := startHosts(t)
	l := startScaleLoad(t, hosts, false)
	l.waitMore(t, 300)
	frozen := time.Now()
	if err := syscall.Kill(-hosts[0].pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := l.waitClientLog(t, "endpoint ejected", hosts[0].addr, frozen, 4*time.Second)
	l.waitMore(t, 300)
	waitfor.Until(t, 10*time.Second, "5 s frozen", func() bool { return time.Since(frozen) >= 5*time.Second })
	thawed := time.Now()
	if err := syscall.Kill(-hosts[0].pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := l.waitClientLog(t, "endpoint back", hosts[0].addr, thawed, 10*time.Second)
	l.waitMore(t, 300)
	l.stop()
	t.Logf("frozen host ejected after %v, back %v after SIGCONT", took, back)
	l.checkNoFailure(t)
}
