package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/registry"
)

func TestSpread(t *testing.T) {
	a, b, c := discovery.Endpoint{Addr: "a:1", Weight: 1}, discovery.Endpoint{Addr: "b:1", Weight: 2}, discovery.Endpoint{Addr: "c:1"}
	tests := []struct {
		name string
		eps  []discovery.Endpoint
		n    int
		want map[string]int
	}{
		{name: "even", eps: []discovery.Endpoint{a, c}, n: 4, want: map[string]int{"a:1": 2, "c:1": 2}},
		{name: "weights 1:2", eps: []discovery.Endpoint{a, b}, n: 6, want: map[string]int{"a:1": 2, "b:1": 4}},
		{name: "fewer connections than endpoints", eps: []discovery.Endpoint{a, b, c}, n: 2, want: map[string]int{"a:1": 1, "b:1": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int{}
			for _, addr := range spread(tt.eps, tt.n) {
				got[addr]++
			}
			if len(got) != len(tt.want) {
				t.Fatalf("spread = %v, want %v", got, tt.want)
			}
			for addr, n := range tt.want {
				if got[addr] != n {
					t.Fatalf("spread = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestConnAddrsSingle(t *testing.T) {
	if got := connAddrs1(t, "127.0.0.1:9", 3); !slices.Equal(got, []string{"127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9"}) {
		t.Fatalf("connAddrs = %v", got)
	}
}

func connAddrs1(t *testing.T, target string, n int) []string {
	t.Helper()
	addrs, err := connAddrs(target, n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// benchTargets runs rpcbench with 4 connections against target and
// checks that each server took two.
func benchTargets(t *testing.T, target string, servers ...*testServer) {
	t.Helper()
	r := runReport(t, 0, "-addr", target, "-json", "-c", "4", "-d", "0", "-n", "400")
	if r.Requests < 400 {
		t.Fatalf("%d requests, want 400", r.Requests)
	}
	for i, s := range servers {
		if n := s.accepted.Load(); n != 2 {
			t.Errorf("server %d accepted %d connections, want 2", i, n)
		}
	}
}

func TestBenchList(t *testing.T) {
	s1, s2 := &testServer{}, &testServer{}
	benchTargets(t, s1.start(t)+","+s2.start(t), s1, s2)
}

func TestBenchEtcd(t *testing.T) {
	e := etcdtest.Start(t)
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := &testServer{}, &testServer{}
	for _, addr := range []string{s1.start(t), s2.start(t)} {
		v, _ := json.Marshal(registry.Record{Addr: addr, Weight: 1})
		if _, err := c.Put(context.Background(), []byte(registry.Key(registry.DefaultPrefix, "bench", addr)), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	benchTargets(t, "etcd://"+e.Addr+"/bench", s1, s2)
	var stderr bytes.Buffer
	if got := run([]string{"-addr", "etcd://" + e.Addr + "/nothing", "-n", "1", "-d", "0"}, &bytes.Buffer{}, &stderr); got == 0 ||
		!strings.Contains(stderr.String(), "no endpoint") {
		t.Fatalf("a service with no host: exit %d, stderr %q", got, stderr.String())
	}
}
