//go:build linux

package etcd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/registry"
)

// lists records what a resolver delivers.
type lists struct {
	mu  sync.Mutex
	all [][]discovery.Endpoint
}

func (l *lists) update(eps []discovery.Endpoint) {
	l.mu.Lock()
	l.all = append(l.all, eps)
	l.mu.Unlock()
}

func (l *lists) n() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

func (l *lists) last() ([]discovery.Endpoint, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return nil, false
	}
	return l.all[len(l.all)-1], true
}

func (l *lists) waitFor(t *testing.T, what string, want []discovery.Endpoint) {
	t.Helper()
	waitfor.Until(t, 5*time.Second, what, func() bool {
		got, ok := l.last()
		return ok && slices.Equal(got, want)
	})
}

func putHost(t *testing.T, c *etcdv3.Client, prefix, addr string, weight int) {
	t.Helper()
	v, _ := json.Marshal(registry.Record{Addr: addr, Weight: weight})
	if _, err := c.Put(context.Background(), []byte(registry.Key(prefix, "svc", addr)), v, 0); err != nil {
		t.Fatal(err)
	}
}

func TestResolver(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	putHost(t, c, "/p", "10.0.0.1:1", 2)
	putHost(t, c, "/p", "10.0.0.2:1", 1)
	putHost(t, c, "/p", "10.0.0.3:1", 1)
	putHost(t, c, "/other", "10.0.0.9:1", 1) // another prefix
	if _, err := c.Put(context.Background(), []byte("/p/svc2/10.0.0.8:1"), []byte(`{"addr":"10.0.0.8:1"}`), 0); err != nil {
		t.Fatal(err) // another service whose name starts like it
	}
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	r, err := discovery.New("etcd://"+e.Addr+"/svc?prefix=/p", log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var l lists
	go func() { defer close(done); r.Watch(ctx, l.update) }()
	defer func() { cancel(); <-done }()
	l.waitFor(t, "the three hosts", []discovery.Endpoint{ep("10.0.0.1:1", 2), ep("10.0.0.2:1", 1), ep("10.0.0.3:1", 1)})

	// Changes arrive through the watch.
	putHost(t, c, "/p", "10.0.0.2:1", 5)
	if err := c.Delete(context.Background(), []byte(registry.Key("/p", "svc", "10.0.0.3:1"))); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, "the update and the delete", []discovery.Endpoint{ep("10.0.0.1:1", 2), ep("10.0.0.2:1", 5)})

	// etcd unreachable: the list stays, no update at all.
	e.Stop()
	n := l.n()
	waitfor.Until(t, 10*time.Second, "failed reads of the list", func() bool {
		return logs.FilterMessage("read registry; keeping the last list").Len() >= 1 &&
			logs.FilterMessage("registry watch broke; reading the list again").Len() >= 1
	})
	if l.n() != n {
		got, _ := l.last()
		t.Fatalf("the list changed to %v with etcd stopped", got)
	}
	e.Restart(t)
	putHost(t, c, "/p", "10.0.0.4:1", 1)
	l.waitFor(t, "the list after etcd is back", []discovery.Endpoint{ep("10.0.0.1:1", 2), ep("10.0.0.2:1", 5), ep("10.0.0.4:1", 1)})

	// An empty list from etcd empties it.
	for _, a := range []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.4:1"} {
		if err := c.Delete(context.Background(), []byte(registry.Key("/p", "svc", a))); err != nil {
			t.Fatal(err)
		}
	}
	l.waitFor(t, "an empty list", []discovery.Endpoint{})
}

func ep(addr string, weight int) discovery.Endpoint {
	return discovery.Endpoint{Addr: addr, Weight: weight}
}

// Watches that keep breaking are retried with a growing backoff, and the
// episode is logged once.
func TestBrokenWatchBacksOff(t *testing.T) {
	var watches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v3/kv/range":
			io.WriteString(w, `{"header":{"revision":"5"}}`) //nolint:errcheck // the resolver sees the outcome
		case "/v3/watch":
			watches.Add(1)
			io.WriteString(w, `{"result":{"created":true}}`) //nolint:errcheck // then the stream ends
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	r, err := Build(discovery.Target{Scheme: "etcd", Authority: strings.TrimPrefix(srv.URL, "http://"), Name: "svc"}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Watch(ctx, func([]discovery.Endpoint) {}) }()
	// Between the first watch and the fifth, 100+200+400+800 ms (±20 %) of
	// backoff; a fixed 100 ms would make it about 400 ms.
	waitfor.Until(t, 10*time.Second, "the first watch", func() bool { return watches.Load() >= 1 })
	start := time.Now()
	waitfor.Until(t, 10*time.Second, "the fifth watch", func() bool { return watches.Load() >= 5 })
	took := time.Since(start)
	cancel()
	<-done
	if took < time.Second {
		t.Errorf("five watches broke within %v, want the backoff to grow to over 1s", took)
	}
	if got := logs.FilterMessage("registry watch broke; reading the list again").Len(); got != 1 {
		t.Errorf("the breaks were logged %d times, want once", got)
	}
}
