package registry

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/internal/waitfor"
)

// keyWatch records every event on the keys under a prefix.
type keyWatch struct {
	mu  sync.Mutex
	evs []etcdv3.Event
}

func watchPrefix(t *testing.T, c *etcdv3.Client, prefix string) *keyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &keyWatch{}
	created := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Watch(ctx, []byte(prefix), 0, func() { close(created) }, func(evs []etcdv3.Event) { //nolint:errcheck // ends with ctx
			w.mu.Lock()
			w.evs = append(w.evs, evs...)
			w.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-created:
	case <-time.After(5 * time.Second):
		t.Fatal("watch not created")
	}
	return w
}

func (w *keyWatch) count(del bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.evs {
		if e.Delete == del {
			n++
		}
	}
	return n
}

func getRecord(t *testing.T, c *etcdv3.Client, key string) (Record, int64, bool) {
	t.Helper()
	kvs, _, err := c.Range(context.Background(), []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if string(kv.Key) == key {
			var rec Record
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				t.Fatal(err)
			}
			return rec, kv.Lease, true
		}
	}
	return Record{}, 0, false
}

func TestRegistrar(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	key := Key(DefaultPrefix, "rpcd", "127.0.0.2:8080")
	w := watchPrefix(t, c, key)
	rec := Record{Addr: "127.0.0.2:8080", ByteOrder: "little", Weight: 2, Version: "test", Started: time.Now().UTC()}
	r, err := New(Config{Etcd: []string{e.Addr}, Key: key, TTL: 2 * time.Second}, rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	waitfor.Until(t, 5*time.Second, "the key", func() bool { _, _, ok := getRecord(t, c, key); return ok })
	lease := r.Lease()

	// An update is a put in place, under the same lease.
	rec.Weight = 3
	r.Update(rec)
	waitfor.Until(t, 5*time.Second, "weight 3", func() bool { got, _, _ := getRecord(t, c, key); return got.Weight == 3 })
	// Renewals outlive the TTL.
	waitfor.Until(t, 10*time.Second, "twice the TTL", func() bool { return w.count(false) >= 2 && time.Since(rec.Started) > 4*time.Second })
	if _, l, ok := getRecord(t, c, key); !ok || l != lease {
		t.Fatalf("key present %v under lease %x, want %x", ok, l, lease)
	}
	if n := w.count(true); n != 0 {
		t.Fatalf("%d deletes seen, want none", n)
	}

	// Updates more often than renewals do not hold the renewals back.
	tick := time.NewTicker(300 * time.Millisecond)
	for i := range 12 { // 3.6 s, nearly twice the TTL
		<-tick.C
		rec.Weight = 10 + i
		r.Update(rec)
	}
	tick.Stop()
	waitfor.Until(t, 5*time.Second, "weight 21", func() bool { got, _, _ := getRecord(t, c, key); return got.Weight == 21 })
	if _, l, _ := getRecord(t, c, key); l != lease || w.count(true) != 0 {
		t.Fatalf("after frequent updates: lease %x, want %x; %d deletes seen", l, lease, w.count(true))
	}
	rec.Weight = 3
	r.Update(rec)

	// Deleted by someone else: written back.
	if _, err := c.Put(context.Background(), []byte(key), []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), []byte(key)); err != nil {
		t.Fatal(err)
	}
	waitfor.Until(t, 5*time.Second, "the key written back", func() bool { got, _, _ := getRecord(t, c, key); return got.Weight == 3 })

	// A revoked lease (as an expired one): a new lease, the key again.
	if err := c.Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	waitfor.Until(t, 5*time.Second, "a new lease", func() bool {
		_, l, ok := getRecord(t, c, key)
		return ok && l != lease && l == r.Lease()
	})

	// Handed over: the next process keeps the same lease.
	r.Abandon()
	lease = r.Lease()
	r2, err := New(Config{Etcd: []string{e.Addr}, Key: key, TTL: 2 * time.Second, Lease: lease}, rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r2.Start()
	waitfor.Until(t, 10*time.Second, "3 s after the handover", func() bool { return time.Since(rec.Started) > 9*time.Second })
	if _, l, ok := getRecord(t, c, key); !ok || l != lease || r2.Lease() != lease {
		t.Fatalf("after handover: key present %v under lease %x (registrar %x), want %x", ok, l, r2.Lease(), lease)
	}

	dels := w.count(true)
	if err := r2.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := getRecord(t, c, key); ok {
		t.Fatal("key still there after Deregister")
	}
	if w.count(true) == dels && !waitfor.Poll(time.Second, func() bool { return w.count(true) > dels }) {
		t.Fatal("no delete seen after Deregister")
	}
}

// TestRegistrarUnreachable starts with etcd down: the key appears once it
// is up.
func TestRegistrarUnreachable(t *testing.T) {
	e := etcdtest.Start(t)
	e.Stop()
	key := Key("/test", "svc", "127.0.0.3:1")
	core, logs := observer.New(zap.WarnLevel)
	r, err := New(Config{Etcd: []string{e.Addr}, Key: key}, Record{Addr: "127.0.0.3:1", Weight: 1}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	defer r.Abandon()
	waitfor.Until(t, 5*time.Second, "two failed attempts", func() bool {
		return logs.FilterMessage("etcd unreachable; retrying").Len() >= 2
	})
	e.Restart(t)
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	waitfor.Until(t, 10*time.Second, "the key", func() bool { _, _, ok := getRecord(t, c, key); return ok })
}
