//go:build linux && !race

// Not under the race detector, which drops pooled scanners at random.

package cache_test

import (
	"io"
	"runtime"
	"testing"

	"github.com/rpcd/rpcd/handlers/cache/cachetest"
	"github.com/rpcd/rpcd/protocol"
)

// Once the loop is warm, a cache.get costs the worker no heap allocation: the
// calls queued for Redis, their answer queues and answer buffers are reused.
// The whole process is counted, so the client here reads into fixed buffers.
func TestGetDoesNotAllocate(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	if _, _, err := c.call("cache.set", `{"key":"k","value":"xxx"}`); err != nil {
		t.Fatal(err)
	}
	req := protocol.AppendRequest(nil, protocol.LittleEndian, "cache.get", []byte(`{"key":"k"}`))
	answer := make([]byte, 256)
	get := func() {
		if _, err := c.conn.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.conn, answer[:protocol.HeaderSize]); err != nil {
			t.Fatal(err)
		}
		n := int(protocol.LittleEndian.Len(answer))
		if protocol.HeaderSize+n > len(answer) {
			t.Fatalf("answer of %d bytes", n)
		}
		if _, err := io.ReadFull(c.conn, answer[protocol.HeaderSize:protocol.HeaderSize+n]); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		get()
	}
	var resp protocol.Response
	if err := protocol.ParseResponse(answer[protocol.HeaderSize:protocol.HeaderSize+protocol.LittleEndian.Len(answer)], &resp); err != nil || string(resp.Result) != `"xxx"` {
		t.Fatalf("answer %q: %v", resp.Result, err)
	}
	const calls = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		get()
	}
	runtime.ReadMemStats(&after)
	// A stray allocation of the runtime or the test is allowed; one per call
	// or per loop turn is not.
	if n := after.Mallocs - before.Mallocs; n > calls/20 {
		t.Fatalf("%d cache.get calls made %d heap allocations", calls, n)
	}
}
