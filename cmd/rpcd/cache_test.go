//go:build linux

package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	rpcclient "github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/handlers/cache/cachetest"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/protocol"
)

func dialClient(t *testing.T, addr string) *rpcclient.Client {
	t.Helper()
	c, err := rpcclient.Dial(addr, rpcclient.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The cache through the real binary, its workers each with their own Redis
// client, and the Go client.
func TestCacheThroughBinary(t *testing.T) {
	r := cachetest.Start(t)
	s := startServer(t, "-workers=2", "-redis="+r.Addr, "-pool-size=4", "-queue-size=64", "-handler-timeout=5s")
	c := dialClient(t, s.addr)
	ctx := context.Background()
	steps := []struct {
		method, params, wantResult string
	}{
		{"cache.get", `{"key":"k"}`, `null`},
		{"cache.set", `{"key":"k","value":{"nested": [1.50, "\u00e9"]},"ttl":60}`, `true`},
		{"cache.get", `{"key":"k"}`, `{"nested": [1.50, "\u00e9"]}`},
		{"cache.incr", `{"key":"n","by":5}`, `5`},
		{"cache.mget", `{"keys":["k","n","none"]}`, `[{"nested": [1.50, "\u00e9"]},5,null]`},
		{"cache.del", `{"keys":["k","n"]}`, `2`},
		{"cache.exists", `{"key":"k"}`, `false`},
	}
	// Several connections, so both workers (and their Redis clients) serve.
	for conn := range 4 {
		c := dialClient(t, s.addr)
		for _, st := range steps {
			_, result, err := c.Call(ctx, st.method, []byte(st.params))
			if err != nil || string(result) != st.wantResult {
				t.Fatalf("conn %d: %s %s = %s, %v; want %s", conn, st.method, st.params, result, err, st.wantResult)
			}
		}
	}
	_, _, err := c.Call(ctx, "cache.set", []byte(`{"key":"k"}`))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
		t.Fatalf("set without value: %v, want bad_request", err)
	}
	// Redis down answers unavailable; back up, the same workers recover.
	r.Stop()
	if _, _, err := c.Call(ctx, "cache.get", []byte(`{"key":"k"}`)); !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable {
		t.Fatalf("get with Redis down: %v, want unavailable", err)
	}
	r.Restart()
	if !waitfor.Poll(10*time.Second, func() bool {
		var result []byte
		_, result, err = c.Call(ctx, "cache.set", []byte(`{"key":"k","value":1}`))
		return err == nil && string(result) == "true"
	}) {
		t.Fatalf("cache still failing 10s after Redis restarted: %v", err)
	}
}

func TestCacheWithoutRedis(t *testing.T) {
	s := startServer(t, "-workers=1")
	c := dialClient(t, s.addr)
	_, _, err := c.Call(context.Background(), "cache.get", []byte(`{"key":"k"}`))
	var pe *rpcclient.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable || !strings.Contains(pe.Message, "-redis=host:port") {
		t.Fatalf("cache.get without -redis: %v, want unavailable naming -redis", err)
	}
	if _, result, err := c.Call(context.Background(), "ping", []byte(`"still"`)); err != nil || string(result) != `"still"` {
		t.Fatalf("ping: %s, %v", result, err)
	}
}

func TestBlockingFlagsChecked(t *testing.T) {
	tests := []struct {
		name string
		arg  string
	}{
		{name: "zero handler timeout", arg: "-handler-timeout=0s"},
		{name: "negative pool", arg: "-pool-size=-1"},
		{name: "zero queue", arg: "-queue-size=0"},
		{name: "negative db", arg: "-redis-db=-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := launch(t, tt.arg)
			if code := s.waitExit(10 * time.Second); code != 2 {
				t.Fatalf("rpcd %s exited %d, want 2", tt.arg, code)
			}
		})
	}
}
