package etcdv3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/internal/waitfor"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"/rpcd/svc/", "/rpcd/svc0"},
		{"a\xff", "b"},
		{"\xff\xff", "\x00"},
	}
	for _, tt := range tests {
		if got := string(PrefixEnd([]byte(tt.prefix))); got != tt.want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func TestParseEndpoints(t *testing.T) {
	tests := []struct {
		list string
		want int
		ok   bool
	}{
		{"127.0.0.1:2379", 1, true},
		{"a:1, b:2,c:3", 3, true},
		{"[::1]:2379,[::1]:2380", 2, true},
		{"a", 0, false},
		{"a:1,", 0, false},
		{":1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseEndpoints(tt.list)
		if (err == nil) != tt.ok || len(got) != tt.want {
			t.Errorf("ParseEndpoints(%q) = %v, %v; want %d endpoints, ok %v", tt.list, got, err, tt.want, tt.ok)
		}
	}
}

// The calls against a real etcd: leases, a key under one, an expired
// lease, a watch from a compacted revision; a dead endpoint is skipped.
func TestAgainstEtcd(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := New([]string{"127.0.0.1:1", e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lease, err := c.Grant(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ttl, err := c.KeepAlive(ctx, lease); err != nil || ttl <= 0 {
		t.Fatalf("KeepAlive = %v, %v", ttl, err)
	}
	rev, err := c.Put(ctx, []byte("/k/a"), []byte("1"), lease)
	if err != nil {
		t.Fatal(err)
	}
	kvs, at, err := c.Range(ctx, []byte("/k/"))
	if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "1" || kvs[0].Lease != lease || at != rev {
		t.Fatalf("Range = %+v at %d, %v; want /k/a=1 under lease %x at %d", kvs, at, err, lease, rev)
	}
	if err := c.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeepAlive(ctx, lease); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("KeepAlive of a revoked lease: %v, want ErrLeaseNotFound", err)
	}
	if _, err := c.Put(ctx, []byte("/k/a"), nil, lease); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("Put under a revoked lease: %v, want ErrLeaseNotFound", err)
	}
	last, err := c.Put(ctx, []byte("/k/b"), []byte("2"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.unary(ctx, "/v3/kv/compaction", map[string]any{"revision": last}, nil); err != nil {
		t.Fatal(err)
	}
	err = c.Watch(ctx, []byte("/k/"), rev, nil, func([]Event) {})
	if !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch from a compacted revision: %v, want ErrCompacted", err)
	}
}

// silentMember accepts connections and never answers, as a frozen etcd
// member does; it returns its address.
func silentMember(t *testing.T) string {
	t.Helper()
	return tcptest.Serve(t, tcptest.Silent(t)).String()
}

// A member that accepts and never answers, listed first, costs each call
// at most one member timeout: the healthy member behind it answers grant,
// range and watch.
func TestSilentMemberFirst(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := New([]string{silentMember(t), e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := c.Grant(ctx, 5*time.Second)
	if err != nil {
		t.Fatalf("Grant past a silent member: %v", err)
	}
	if _, err := c.Put(ctx, []byte("/s/a"), []byte("1"), lease); err != nil {
		t.Fatalf("Put past a silent member: %v", err)
	}
	c.next.Store(0) // start with the silent member again
	kvs, rev, err := c.Range(ctx, []byte("/s/"))
	if err != nil || len(kvs) != 1 {
		t.Fatalf("Range past a silent member = %+v, %v", kvs, err)
	}
	c.next.Store(0)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	got := make(chan string, 1)
	go c.Watch(wctx, []byte("/s/"), rev, nil, func(evs []Event) { //nolint:errcheck // ends with wctx
		got <- string(evs[0].KV.Key)
	})
	waitfor.Until(t, 5*time.Second, "watch past a silent member", func() bool {
		if _, err := c.Put(ctx, []byte("/s/b"), nil, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			return true
		default:
			return false
		}
	})
}

// A watch whose member confirms it and then falls silent ends with
// ErrWatchIdle after WatchIdle, instead of waiting for good.
func TestWatchIdle(t *testing.T) {
	confirmed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Create struct {
				ProgressNotify bool `json:"progress_notify"`
			} `json:"create_request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !in.Create.ProgressNotify {
			t.Errorf("watch request asks no progress notifications (%v)", err)
		}
		io.WriteString(w, `{"result":{"created":true}}`) //nolint:errcheck // the test sees the outcome
		w.(http.Flusher).Flush()
		close(confirmed)
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := New([]string{strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	c.WatchIdle = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Watch(ctx, []byte("/s/"), 1, nil, func([]Event) {})
	<-confirmed
	if !errors.Is(err, ErrWatchIdle) {
		t.Fatalf("silent watch ended with %v, want ErrWatchIdle", err)
	}
}

// A watch from a revision that a compaction removed ends with
// ErrCompacted, which tells a resolver to read the whole list again.
func TestWatchCompacted(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := c.Put(ctx, []byte("/rpcd/svc/a"), []byte("1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	last, err := c.Put(ctx, []byte("/rpcd/svc/a"), []byte("2"), 0)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.NewReader(fmt.Sprintf(`{"revision":"%d","physical":true}`, last))
	resp, err := http.Post("http://"+e.Addr+"/v3/kv/compaction", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("compaction: %s", resp.Status)
	}
	err = c.Watch(ctx, []byte("/rpcd/svc/"), first, func() {}, func([]Event) {})
	if !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch from compacted revision %d: %v, want ErrCompacted", first, err)
	}
}
