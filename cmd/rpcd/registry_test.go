//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	rpcclient "github.com/rpcd/rpcd/client"
	_ "github.com/rpcd/rpcd/discovery/etcd"
	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/internal/waitfor"
	rpcdregistry "github.com/rpcd/rpcd/registry"
)

// registryTTL is the hosts' lease TTL in these tests.
const registryTTL = 3 * time.Second

// startRegistered runs one rpcd with one worker on ip, registered in e,
// and waits until it has registered.
func startRegistered(t *testing.T, e *etcdtest.Etcd, ip string) *server {
	t.Helper()
	return startRegisteredWith(t, e, ip, "-workers=1")
}

// startThreeRegistered runs one registered rpcd, one worker each, on each
// of 127.0.0.2, .3 and .4.
func startThreeRegistered(t *testing.T, e *etcdtest.Etcd) []*server {
	t.Helper()
	var hosts []*server
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		hosts = append(hosts, startRegistered(t, e, ip))
	}
	return hosts
}

// loadThroughEtcd starts a load through e's list of the rpcd service and
// waits until the client uses each of hosts.
func loadThroughEtcd(t *testing.T, e *etcdtest.Etcd, idempotent bool, hosts ...*server) *scaleLoad {
	t.Helper()
	l := startTargetLoad(t, "etcd://"+e.Addr+"/rpcd", idempotent)
	for _, h := range hosts {
		l.waitEndpointAdded(t, h.addr, 5*time.Second)
	}
	return l
}

// startRegisteredWith runs one rpcd on ip with args, registered in e, and
// waits until it has registered.
func startRegisteredWith(t *testing.T, e *etcdtest.Etcd, ip string, args ...string) *server {
	t.Helper()
	s := startServer(t, append([]string{"-listen=" + ip + ":0", "-registry=etcd://" + e.Addr,
		fmt.Sprintf("-registry-ttl=%v", registryTTL)}, args...)...)
	s.logs.wait(t, 10*time.Second, func(e logEntry) bool { return e.Msg == "registered" })
	return s
}

// registryView reads the registered hosts of service rpcd.
type registryView struct {
	t    *testing.T
	etcd *etcdv3.Client
}

func newRegistryView(t *testing.T, e *etcdtest.Etcd) *registryView {
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	return &registryView{t: t, etcd: c}
}

// hosts returns the registered records by address; nil if etcd cannot be
// read.
func (v *registryView) hosts() map[string]rpcdregistry.Record {
	kvs, _, err := v.etcd.Range(context.Background(), []byte(rpcdregistry.DefaultPrefix+"/rpcd/"))
	if err != nil {
		return nil
	}
	recs := map[string]rpcdregistry.Record{}
	for _, kv := range kvs {
		var rec rpcdregistry.Record
		if json.Unmarshal(kv.Value, &rec) == nil {
			recs[rec.Addr] = rec
		}
	}
	return recs
}

func (v *registryView) lease(addr string) int64 {
	kvs, _, err := v.etcd.Range(context.Background(), []byte(rpcdregistry.Key(rpcdregistry.DefaultPrefix, "rpcd", addr)))
	if err != nil || len(kvs) != 1 {
		v.t.Fatalf("read key of %s: %v, %d keys", addr, err, len(kvs))
	}
	return kvs[0].Lease
}

func (v *registryView) waitHosts(what string, timeout time.Duration, addrs ...string) {
	v.t.Helper()
	slices.Sort(addrs)
	waitfor.Until(v.t, timeout, what, func() bool {
		var got []string
		for a := range v.hosts() {
			got = append(got, a)
		}
		slices.Sort(got)
		return slices.Equal(got, addrs)
	})
}

func addrsOf(hosts []*server) []string {
	var addrs []string
	for _, h := range hosts {
		addrs = append(addrs, h.addr)
	}
	return addrs
}

// waitEndpointAdded waits for the client to take addr into its list and
// returns when it did.
func (l *scaleLoad) waitEndpointAdded(t *testing.T, addr string, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitfor.Until(t, timeout, "client adds "+addr, func() bool {
		for _, e := range l.logs.FilterMessage("endpoints changed").All() {
			for _, a := range e.ContextMap()["added"].([]any) {
				if a == addr {
					at = e.Time
					return true
				}
			}
		}
		return false
	})
	return at
}

// kill -9 of a registered host: at most the calls in flight on it fail
// (none when idempotent), it is out of the picks within a second, and its
// key is gone within the TTL and a second.
func TestRegistryKilledHost(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			e := etcdtest.Start(t)
			v := newRegistryView(t, e)
			hosts := startThreeRegistered(t, e)
			l := loadThroughEtcd(t, e, idempotent, hosts...)
			l.waitMore(t, 300)
			killed := time.Now()
			if err := syscall.Kill(-hosts[0].pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			out := l.waitClientLog(t, "endpoint ejected", hosts[0].addr, killed, time.Second)
			v.waitHosts("the killed host's key gone", registryTTL+2*time.Second, hosts[1].addr, hosts[2].addr)
			gone := time.Since(killed)
			if gone > registryTTL+time.Second {
				t.Errorf("key gone %v after the kill, want within the TTL (%v) and a second", gone, registryTTL)
			}
			l.waitMore(t, 300)
			l.stop()
			failed := l.failed.Load()
			t.Logf("out of the picks %v after the kill, key gone after %v; %d of %d calls failed",
				out, gone, failed, failed+l.answered.Load())
			if idempotent && failed != 0 || failed > 8 {
				t.Fatalf("%d calls failed (8 in flight at most), first: %v", failed, l.firstErr.Load())
			}
		})
	}
}

// etcd stopped for 10 s fails no call, and every host is registered again
// once it is back.
func TestRegistryEtcdOutage(t *testing.T) {
	e := etcdtest.Start(t)
	v := newRegistryView(t, e)
	hosts := startThreeRegistered(t, e)
	l := loadThroughEtcd(t, e, false, hosts...)
	l.waitMore(t, 300)
	e.Stop()
	stopped := time.Now()
	before := l.answered.Load()
	waitfor.Until(t, 15*time.Second, "10 s without etcd", func() bool { return time.Since(stopped) >= 10*time.Second })
	during := l.answered.Load() - before
	e.Restart(t)
	back := time.Now()
	v.waitHosts("every host registered again", 10*time.Second, addrsOf(hosts)...)
	again := time.Since(back)
	l.waitMore(t, 300)
	l.stop()
	t.Logf("%d calls answered during the outage; every host registered %v after etcd was back; %d calls in all",
		during, again, l.answered.Load())
	if during == 0 {
		t.Fatal("no call answered while etcd was down")
	}
	l.checkNoFailure(t)
}

// A host started later is in use within a second of registering.
func TestRegistryLateHost(t *testing.T) {
	e := etcdtest.Start(t)
	first := []*server{startRegistered(t, e, "127.0.0.2"), startRegistered(t, e, "127.0.0.3")}
	l := loadThroughEtcd(t, e, false, first...)
	l.waitMore(t, 300)
	late := startServer(t, "-listen=127.0.0.4:0", "-workers=1", "-registry=etcd://"+e.Addr)
	entry := late.logs.wait(t, 10*time.Second, func(e logEntry) bool { return e.Msg == "registered" })
	registered := logTime(t, entry)
	added := l.waitEndpointAdded(t, late.addr, time.Second)
	waitfor.Until(t, time.Second, "a connection to "+late.addr, func() bool { return established(late.addr) > 0 })
	used := time.Since(registered)
	l.waitMore(t, 300)
	l.stop()
	l.checkNoFailure(t)
	signal(t, late, syscall.SIGTERM)
	if code := late.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("late host exited %d", code)
	}
	stopped := findMsg(late.logs.all(), "loop stopped", "", nil)
	if stopped == nil || stopped.Fields["answered"].(float64) == 0 {
		t.Fatalf("the late host answered no call: %v", stopped)
	}
	t.Logf("late host in the client's list %v after it registered, connected after %v, answered %v calls",
		added.Sub(registered).Round(time.Millisecond), used, stopped.Fields["answered"])
}

// established counts the established TCP connections to addr.
func established(addr string) int {
	out, err := exec.Command("ss", "-Htn", "state", "established", "src", addr).Output()
	if err != nil {
		return 0
	}
	return len(strings.Fields(strings.ReplaceAll(string(out), " ", "")))
}

// keyEvents records the puts and deletes of the hosts' keys.
type keyEvents struct {
	mu  sync.Mutex
	evs []etcdv3.Event
	at  []time.Time
}

func watchKeys(t *testing.T, e *etcdtest.Etcd) *keyEvents {
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	k := &keyEvents{}
	ctx, cancel := context.WithCancel(context.Background())
	created, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, []byte(rpcdregistry.DefaultPrefix+"/rpcd/"), 0, func() { close(created) }, func(evs []etcdv3.Event) { //nolint:errcheck // ends with ctx
			k.mu.Lock()
			defer k.mu.Unlock()
			for _, ev := range evs {
				k.evs = append(k.evs, ev)
				k.at = append(k.at, time.Now())
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitfor.Until(t, 5*time.Second, "the watch", func() bool {
		select {
		case <-created:
			return true
		default:
			return false
		}
	})
	return k
}

// count returns the puts and deletes seen from the from-th event on.
func (k *keyEvents) count(from int) (n, puts, deletes int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ev := range k.evs[from:] {
		if ev.Delete {
			deletes++
		} else {
			puts++
		}
	}
	return len(k.evs), puts, deletes
}

// HUP and TTIN update the registration in place, USR2 keeps its lease, and
// TERM deletes it -deregister-delay (1 s) before the workers drain.
func TestRegistrySignals(t *testing.T) {
	e := etcdtest.Start(t)
	v := newRegistryView(t, e)
	k := watchKeys(t, e)
	s := startRegistered(t, e, "127.0.0.2")
	lease := v.lease(s.addr)

	from := len(s.logs.all())
	mark, _, _ := k.count(0)
	signal(t, s, syscall.SIGHUP)
	waitLog(t, s, from, 30*time.Second, "reload written", func(es []logEntry) bool { return countMsg(es, "registered") > 0 })
	signal(t, s, syscall.SIGTTIN)
	waitfor.Until(t, 10*time.Second, "weight 2", func() bool { return v.hosts()[s.addr].Weight == 2 })
	signal(t, s, syscall.SIGTTOU)
	waitfor.Until(t, 10*time.Second, "weight 1 again", func() bool { return v.hosts()[s.addr].Weight == 1 })
	if _, puts, dels := k.count(mark); puts < 3 || dels != 0 {
		t.Fatalf("HUP, TTIN and TTOU: %d puts and %d deletes, want 3 puts or more and no delete", puts, dels)
	}

	from = len(s.logs.all())
	mark, _, _ = k.count(0)
	signal(t, s, syscall.SIGUSR2)
	waitLog(t, s, from, 60*time.Second, "upgraded generation ready", func(es []logEntry) bool {
		return findMsg(es, "new generation ready", "reason", "upgrade") != nil
	})
	upgraded := time.Now()
	waitLog(t, s, from, 10*time.Second, "the new image's registration", func(es []logEntry) bool {
		return findMsg(es, "taking over the registration lease", "", nil) != nil && countMsg(es, "registered") > 0
	})
	// Past the TTL, only the new image can have kept the lease alive.
	waitfor.Until(t, 2*registryTTL, "the TTL and a second after the upgrade", func() bool {
		return time.Since(upgraded) > registryTTL+time.Second
	})
	if got := v.lease(s.addr); got != lease {
		t.Fatalf("lease %x after the upgrade, want %x", got, lease)
	}
	if _, _, dels := k.count(mark); dels != 0 {
		t.Fatalf("%d deletes over the upgrade, want none", dels)
	}

	from = len(s.logs.all())
	mark, _, _ = k.count(0)
	signal(t, s, syscall.SIGTERM)
	if code := s.waitExit(30 * time.Second); code != 0 {
		t.Fatalf("exited %d", code)
	}
	stopping := findMsg(s.logs.all()[from:], "stopping workers", "", nil)
	if stopping == nil {
		t.Fatal("no \"stopping workers\" logged")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i := slices.IndexFunc(k.evs[mark:], func(ev etcdv3.Event) bool { return ev.Delete })
	if i < 0 {
		t.Fatal("no delete seen on TERM")
	}
	deleted := k.at[mark+i]
	drained := logTime(t, *stopping)
	// The watch sees the delete no sooner than the revoke returns; the
	// log's times are to the millisecond.
	if gap := drained.Sub(deleted); gap < time.Second-20*time.Millisecond {
		t.Fatalf("key deleted at %v, %v before the workers were told to stop at %v, want the delay of 1s", deleted, gap, drained)
	}
	t.Logf("key deleted %v before the workers were told to stop", drained.Sub(deleted))
}

// logTime is when rpcd logged e.
func logTime(t *testing.T, e logEntry) time.Time {
	t.Helper()
	ts, _ := e.Fields["ts"].(string)
	at, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
	if err != nil {
		t.Fatalf("log time of %s: %v", e.raw, err)
	}
	return at
}

// Three registered hosts with 1, 2 and 3 workers (weights 1, 2, 3) get
// calls in proportion through etcd://, under a load light enough that no
// host's capacity bounds its share. The counts are each host's own, from
// its metrics endpoint. Each share is held within 5 % of its due
// (relative); 24,000 calls make the noise on the smallest share about
// 1.5 %.
func TestRegistryWeights(t *testing.T) {
	e := etcdtest.Start(t)
	var hosts []*server
	var bases []string
	for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		h := startRegisteredWith(t, e, ip, fmt.Sprintf("-workers=%d", i+1), "-metrics-listen=127.0.0.1:0")
		hosts = append(hosts, h)
		bases = append(bases, metricsBase(t, h, 0))
	}
	core, logs := observer.New(zap.InfoLevel)
	c, err := rpcclient.New("etcd://"+e.Addr+"/rpcd", rpcclient.Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := &scaleLoad{logs: logs}
	for _, h := range hosts {
		l.waitEndpointAdded(t, h.addr, 5*time.Second)
	}
	pings := func() []float64 {
		var n []float64
		for _, b := range bases {
			n = append(n, sumWhere(scrape(t, b), "rpcd_requests_total", map[string]string{"method": "ping"}))
		}
		return n
	}
	before := pings()
	const callers, calls = 6, 4000
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			params := []byte(fmt.Sprintf(`"g%d"`, g))
			for range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, _, err := c.Call(ctx, "ping", params); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				cancel()
				time.Sleep(time.Millisecond) // the caller's own work between calls
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d calls failed, first: %v", n, firstErr.Load())
	}
	const total = callers * calls
	var got []float64
	var sum float64
	waitfor.Until(t, 5*time.Second, "every answer counted", func() bool {
		got, sum = pings(), 0
		for i := range got {
			got[i] -= before[i]
			sum += got[i]
		}
		return sum >= total
	})
	for i := range hosts {
		share := got[i] / sum
		want := float64(i+1) / 6
		t.Logf("%s, %d workers: %.3f of the calls, want %.3f", hosts[i].addr, i+1, share, want)
		if share < want*0.95 || share > want*1.05 {
			t.Errorf("%s got %.3f of the calls, want %.3f ±5 %%", hosts[i].addr, share, want)
		}
	}
}
