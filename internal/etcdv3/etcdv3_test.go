package etcdv3

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/etcdtest"
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
