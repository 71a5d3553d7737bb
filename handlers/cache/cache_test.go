//go:build linux

package cache_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/handlers/cache"
	"github.com/rpcd/rpcd/handlers/cache/cachetest"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
)

// callLimit is each call's deadline, as a worker would set it.
const callLimit = 10 * time.Second

// caller runs cache methods through a worker serving them in this process,
// over one client connection.
type caller struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func newCaller(t testing.TB, store *cache.Store) *caller {
	return newCallerTimeout(t, store, callLimit)
}

// newCallerTimeout serves store's methods on a worker whose handler deadline
// is timeout, on 127.0.0.1, until the test ends.
func newCallerTimeout(t testing.TB, store *cache.Store, timeout time.Duration) *caller {
	t.Helper()
	reg := rpc.NewRegistry()
	store.Register(reg)
	w, err := worker.New(worker.Config{HandlerTimeout: timeout}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	lfd, err := syscall.Dup(int(f.Fd()))
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- w.Serve(lfd, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		w.Shutdown()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(callLimit):
			t.Error("the worker did not stop")
		}
	})
	return &caller{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// call runs method alone and returns its out and result, or its error.
func (c *caller) call(method, params string) (out, result string, err error) {
	c.t.Helper()
	calls := c.batch(method, params)
	return calls[0].Reply.Out(), string(calls[0].Reply.Result()), calls[0].Err
}

// batch sends one call of method per params in one write, so the worker reads
// them in one loop turn, and returns their answers: Reply, or Err from an
// error answer.
func (c *caller) batch(method string, params ...string) []rpc.Call {
	c.t.Helper()
	var frames []byte
	for _, p := range params {
		frames = protocol.AppendRequest(frames, protocol.LittleEndian, method, []byte(p))
	}
	if err := c.conn.SetDeadline(time.Now().Add(2 * callLimit)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(frames); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	calls := make([]rpc.Call, len(params))
	for i := range calls {
		body, err := protocol.ReadFrame(c.r, protocol.LittleEndian, 1<<30, nil)
		if err != nil {
			c.t.Fatalf("read answer %d of %s: %v", i, method, err)
		}
		var resp protocol.Response
		if err := protocol.ParseResponse(body, &resp); err != nil {
			c.t.Fatalf("parse answer %q: %v", body, err)
		}
		if e, ok := resp.AsError(); ok {
			calls[i].Err = e
			continue
		}
		calls[i].Reply.SetOut(string(resp.Out))
		calls[i].Reply.SetRaw(resp.Result)
	}
	return calls
}

func code(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return "plain error: " + err.Error()
	}
	return ""
}

func openStore(t *testing.T, addr string) *cache.Store {
	t.Helper()
	store := cache.New()
	if err := store.Open(cache.Config{Addr: addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// The steps run in order against one empty Redis; each sees the ones before.
func TestMethods(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	steps := []struct {
		name       string
		method     string
		params     string
		wantOut    string
		wantResult string
		wantCode   string
	}{
		{name: "get missing", method: "cache.get", params: `{"key":"a"}`, wantOut: "get_r", wantResult: `null`},
		{name: "set object", method: "cache.set", params: `{"key":"a","value":{"x": [1, 2.50, "é\u00e9"]}}`, wantOut: "set_r", wantResult: `true`},
		{name: "get is byte exact", method: "cache.get", params: `{"key":"a"}`, wantOut: "get_r", wantResult: `{"x": [1, 2.50, "é\u00e9"]}`},
		{name: "set big number", method: "cache.set", params: `{"key":"n","value":12345678901234567890.000}`, wantOut: "set_r", wantResult: `true`},
		{name: "get big number", method: "cache.get", params: `{"key":"n"}`, wantOut: "get_r", wantResult: `12345678901234567890.000`},
		{name: "set null value", method: "cache.set", params: `{"key":"z","value":null}`, wantOut: "set_r", wantResult: `true`},
		{name: "exists null value", method: "cache.exists", params: `{"key":"z"}`, wantOut: "exists_r", wantResult: `true`},
		{name: "exists several", method: "cache.exists", params: `{"keys":["a","z","nope","a"]}`, wantOut: "exists_r", wantResult: `3`},
		{name: "exists missing", method: "cache.exists", params: `{"key":"nope"}`, wantOut: "exists_r", wantResult: `false`},
		{name: "incr new", method: "cache.incr", params: `{"key":"count"}`, wantOut: "incr_r", wantResult: `1`},
		{name: "incr by", method: "cache.incr", params: `{"key":"count","by":-11}`, wantOut: "incr_r", wantResult: `-10`},
		{name: "get counter", method: "cache.get", params: `{"key":"count"}`, wantOut: "get_r", wantResult: `-10`},
		{name: "incr non-integer", method: "cache.incr", params: `{"key":"a"}`, wantCode: protocol.CodeBadRequest},
		{name: "ttl without expiry", method: "cache.ttl", params: `{"key":"a"}`, wantOut: "ttl_r", wantResult: `-1`},
		{name: "ttl missing", method: "cache.ttl", params: `{"key":"nope"}`, wantOut: "ttl_r", wantResult: `null`},
		{name: "expire missing", method: "cache.expire", params: `{"key":"nope","ttl":5}`, wantOut: "expire_r", wantResult: `false`},
		{name: "mset", method: "cache.mset", params: `{"items":{"m1":"one","m2":[2],"m3":{"three":3}}}`, wantOut: "mset_r", wantResult: `true`},
		{name: "mget", method: "cache.mget", params: `{"keys":["m1","nope","m2","m3"]}`, wantOut: "mget_r", wantResult: `["one",null,[2],{"three":3}]`},
		{name: "del several", method: "cache.del", params: `{"keys":["m1","m2","nope"]}`, wantOut: "del_r", wantResult: `2`},
		{name: "del one", method: "cache.del", params: `{"key":"m3"}`, wantOut: "del_r", wantResult: `1`},
		{name: "get deleted", method: "cache.get", params: `{"key":"m3"}`, wantOut: "get_r", wantResult: `null`},
	}
	for _, st := range steps {
		out, result, err := c.call(st.method, st.params)
		if got := code(err); got != st.wantCode {
			t.Fatalf("%s: error %v, want code %q", st.name, err, st.wantCode)
		}
		if st.wantCode == "" && (out != st.wantOut || result != st.wantResult) {
			t.Fatalf("%s: answered %s %s, want %s %s", st.name, out, result, st.wantOut, st.wantResult)
		}
	}
}

// The calls of one batch go as one pipeline; each is answered from its own
// reply, a call with bad params fails alone, and commands run in call order.
func TestBatchAnswersEachCall(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	if calls := c.batch("cache.set", `{"key":"a","value":[1.0]}`, `{"key":"b"}`, `{"key":"n","value":"x"}`); calls[1].Err == nil {
		t.Fatalf("set without value answered %s", calls[1].Reply.Result())
	}
	calls := c.batch("cache.incr", `{"key":"c"}`, `{"key":"n"}`, `{"key":"c","by":5}`, `{"key":1}`, `{"key":"c"}`)
	want := []struct{ result, code string }{{`1`, ""}, {"", protocol.CodeBadRequest}, {`6`, ""}, {"", protocol.CodeBadRequest}, {`7`, ""}}
	for i, w := range want {
		if got := code(calls[i].Err); got != w.code || (w.code == "" && string(calls[i].Reply.Result()) != w.result) {
			t.Fatalf("incr call %d: %s, %v; want %s %q", i, calls[i].Reply.Result(), calls[i].Err, w.result, w.code)
		}
		if w.code == "" && calls[i].Reply.Out() != "incr_r" {
			t.Fatalf("incr call %d: out %q", i, calls[i].Reply.Out())
		}
	}
	calls = c.batch("cache.get", `{"key":"a"}`, `{"key":"b"}`, `{"key":"c"}`, `null`)
	for i, w := range []string{`[1.0]`, `null`, `7`} {
		if calls[i].Err != nil || string(calls[i].Reply.Result()) != w {
			t.Fatalf("get call %d: %s, %v; want %s", i, calls[i].Reply.Result(), calls[i].Err, w)
		}
	}
	if got := code(calls[3].Err); got != protocol.CodeBadRequest {
		t.Fatalf("get with null params: %v, want bad_request", calls[3].Err)
	}
}

func TestBadParams(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	tests := []struct {
		name      string
		method    string
		params    string
		wantShape string
	}{
		{name: "null params", method: "cache.get", params: `null`, wantShape: `{"key": string}`},
		{name: "bare key", method: "cache.get", params: `"a"`, wantShape: `{"key": string}`},
		{name: "key not a string", method: "cache.get", params: `{"key":1}`, wantShape: `{"key": string}`},
		{name: "empty key", method: "cache.get", params: `{"key":""}`, wantShape: `{"key": string}`},
		{name: "unknown member", method: "cache.get", params: `{"key":"a","keyz":1}`, wantShape: `{"key": string}`},
		{name: "member spelled in capitals", method: "cache.get", params: `{"KEY":"a"}`, wantShape: `{"key": string}`},
		{name: "member of another method", method: "cache.get", params: `{"key":"a","ttl":1}`, wantShape: `{"key": string}`},
		{name: "set without value", method: "cache.set", params: `{"key":"a"}`, wantShape: `"value": any JSON`},
		{name: "set zero ttl", method: "cache.set", params: `{"key":"a","value":1,"ttl":0}`, wantShape: `"ttl"?: seconds`},
		{name: "set sub-ms ttl", method: "cache.set", params: `{"key":"a","value":1,"ttl":0.0004}`, wantShape: `"ttl"?: seconds`},
		{name: "set string ttl", method: "cache.set", params: `{"key":"a","value":1,"ttl":"5"}`, wantShape: `"ttl"?: seconds`},
		{name: "incr fractional by", method: "cache.incr", params: `{"key":"a","by":1.5}`, wantShape: `"by"?: integer`},
		{name: "expire without ttl", method: "cache.expire", params: `{"key":"a"}`, wantShape: `"ttl": seconds`},
		{name: "del key and keys", method: "cache.del", params: `{"key":"a","keys":["b"]}`, wantShape: `{"keys": [string, ...]}`},
		{name: "del no keys", method: "cache.del", params: `{"keys":[]}`, wantShape: `{"keys": [string, ...]}`},
		{name: "mget single key", method: "cache.mget", params: `{"key":"a"}`, wantShape: `{"keys": [string, ...]}`},
		{name: "mset no items", method: "cache.mset", params: `{"items":{}}`, wantShape: `{"items": {key: any JSON, ...}`},
		{name: "mset items not an object", method: "cache.mset", params: `{"items":[1]}`, wantShape: `{"items": {key: any JSON, ...}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			_, _, err := c.call(tt.method, tt.params)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
				t.Fatalf("error %v, want bad_request", err)
			}
			if !strings.Contains(pe.Message, tt.wantShape) || !strings.HasPrefix(pe.Message, tt.method+": ") {
				t.Fatalf("message %q lacks the method or the shape %s", pe.Message, tt.wantShape)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	steps := []struct {
		method, params string
		maxTTL         float64 // the ttl answer must be in (0, maxTTL]
	}{
		{method: "cache.set", params: `{"key":"s","value":"v","ttl":100.5}`, maxTTL: 100.5},
		{method: "cache.expire", params: `{"key":"s","ttl":0.25}`, maxTTL: 0.25},
		{method: "cache.mset", params: `{"items":{"s":1},"ttl":7}`, maxTTL: 7},
	}
	for _, st := range steps {
		if _, _, err := c.call(st.method, st.params); err != nil {
			t.Fatalf("%s %s: %v", st.method, st.params, err)
		}
		_, result, err := c.call("cache.ttl", `{"key":"s"}`)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := strconv.ParseFloat(result, 64); err != nil || got <= 0 || got > st.maxTTL {
			t.Fatalf("after %s: ttl %s, want within (0, %v]", st.method, result, st.maxTTL)
		}
	}
	// The key expires: poll, bounded, until it is gone.
	if _, _, err := c.call("cache.expire", `{"key":"s","ttl":0.05}`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, result, _ := c.call("cache.get", `{"key":"s"}`); result == "null" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 50ms TTL still there after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNotConfiguredAnswersUnavailable(t *testing.T) {
	c := newCaller(t, cache.New())
	_, _, err := c.call("cache.get", `{"key":"a"}`)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable || !strings.Contains(pe.Message, "-redis=host:port") {
		t.Fatalf("error %v, want unavailable telling how to configure Redis", err)
	}
}

// Redis going away answers unavailable, not a hang or a timeout; once it is
// back on the same port, the same store works again.
func TestRedisRestart(t *testing.T) {
	r := cachetest.Start(t)
	c := newCaller(t, openStore(t, r.Addr))
	if _, _, err := c.call("cache.set", `{"key":"k","value":1}`); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	for i := range 3 {
		_, _, err := c.call("cache.get", `{"key":"k"}`)
		if got := code(err); got != protocol.CodeUnavailable {
			t.Fatalf("call %d with Redis down: %v, want unavailable", i, err)
		}
	}
	r.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, result, err := c.call("cache.set", `{"key":"k","value":2}`)
		if err == nil && result == "true" {
			break
		}
		if got := code(err); got != protocol.CodeUnavailable {
			t.Fatalf("after restart: %v, want success or unavailable while reconnecting", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache still failing 10s after Redis restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, result, err := c.call("cache.get", `{"key":"k"}`); err != nil || result != "2" {
		t.Fatalf("get after restart = %s, %v", result, err)
	}
}

func TestValueNotStoredByRPCD(t *testing.T) {
	r := cachetest.Start(t)
	store := openStore(t, r.Addr)
	c := newCaller(t, store)
	// cache.incr stores a bare integer, valid JSON; a value written by another
	// Redis client need not be JSON. Simulate one with a raw SET.
	rawSet(t, r.Addr, "foreign", "not json")
	_, _, err := c.call("cache.get", `{"key":"foreign"}`)
	if got := code(err); got != protocol.CodeInternal {
		t.Fatalf("get of a non-JSON value: %v, want internal", err)
	}
}

// rawSet stores value under key with a plain RESP command.
func rawSet(t *testing.T, addr, key, value string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(value), value)
	if _, err := conn.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "+OK\r\n" {
		t.Fatalf("SET answered %q, %v", line, err)
	}
}

// The password and the database number apply to every connection: values land
// in the chosen database, and a wrong password answers unavailable.
func TestAuthAndSelect(t *testing.T) {
	r := cachetest.Start(t, "--requirepass", "s3cret")
	store := cache.New()
	if err := store.Open(cache.Config{Addr: r.Addr, Password: "s3cret", DB: 3}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := newCaller(t, store)
	calls := c.batch("cache.set", `{"key":"k","value":"in three"}`, `{"key":"j","value":1}`)
	for i := range calls {
		if calls[i].Err != nil {
			t.Fatalf("set %d: %v", i, calls[i].Err)
		}
	}
	if got := rawGet(t, r.Addr, "AUTH", "s3cret", "SELECT", "3", "GET", "k"); got != `"in three"` {
		t.Fatalf("database 3 holds %q under k", got)
	}
	if got := rawGet(t, r.Addr, "AUTH", "s3cret", "GET", "k"); got != "" {
		t.Fatalf("database 0 holds %q under k, want nothing", got)
	}

	wrong := cache.New()
	if err := wrong.Open(cache.Config{Addr: r.Addr, Password: "wrong"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wrong.Close() })
	_, _, err := newCaller(t, wrong).call("cache.get", `{"key":"k"}`)
	if got := code(err); got != protocol.CodeUnavailable {
		t.Fatalf("get with a wrong password: %v, want unavailable", err)
	}
}

// rawGet sends pairs of commands of one argument each, then GET of its last
// argument, and returns GET's value, "" for none.
func rawGet(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&b, "*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(args[i]), args[i], len(args[i+1]), args[i+1])
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	for i := 0; i+3 < len(args); i += 2 {
		if line, err := rd.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("%s answered %q, %v", args[i], line, err)
		}
	}
	line, err := rd.ReadString('\n')
	if err != nil || line == "$-1\r\n" {
		return ""
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		t.Fatalf("GET answered %q", line)
	}
	value := make([]byte, n+2)
	if _, err := io.ReadFull(rd, value); err != nil {
		t.Fatal(err)
	}
	return string(value[:n])
}

// A Redis that accepts the connection but never answers fails the batch
// with timeout at the handler's deadline.
func TestSilentRedisTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	c := newCallerTimeout(t, openStore(t, ln.Addr().String()), 100*time.Millisecond)
	start := time.Now()
	calls := c.batch("cache.incr", `{"key":"a"}`, `{"key":"b"}`)
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Fatalf("batch took %v; the handler deadline was 100ms", took)
	}
	for i := range calls {
		if got := code(calls[i].Err); got != protocol.CodeTimeout {
			t.Fatalf("call %d: %v, want timeout", i, calls[i].Err)
		}
	}
}

// BenchmarkBatchGet sends batches of 25 cache.get calls in one write, the
// size two workers see under 50 connections, through an in-process worker to
// a real redis-server; the time includes the client's and Redis's.
func BenchmarkBatchGet(b *testing.B) {
	r := cachetest.Start(b)
	store := cache.New()
	if err := store.Open(cache.Config{Addr: r.Addr}); err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	c := newCaller(b, store)
	c.batch("cache.set", `{"key":"rpcd:key","value":"xxx"}`)
	params := make([]string, 25)
	for i := range params {
		params[i] = `{"key":"rpcd:key"}`
	}
	b.ReportAllocs()
	for b.Loop() {
		calls := c.batch("cache.get", params...)
		if calls[0].Err != nil || string(calls[24].Reply.Result()) != `"xxx"` {
			b.Fatalf("get: %v %s", calls[0].Err, calls[24].Reply.Result())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(params)), "ns/call")
}

// A connection that breaks with commands sent fails each of them with
// unavailable at once, and none is sent again: a retried cache.incr could
// count twice.
func TestBrokenConnectionNotRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 4) // what each connection sent before it was cut
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read until both commands are in, then close without a reply.
			var seen []byte
			buf := make([]byte, 4096)
			_ = conn.SetReadDeadline(time.Now().Add(callLimit))
			for strings.Count(string(seen), "INCRBY") < 2 {
				n, err := conn.Read(buf)
				seen = append(seen, buf[:n]...)
				if err != nil {
					break
				}
			}
			conn.Close()
			got <- string(seen)
		}
	}()
	c := newCaller(t, openStore(t, ln.Addr().String()))
	start := time.Now()
	calls := c.batch("cache.incr", `{"key":"a"}`, `{"key":"b"}`)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("answered after %v, want at once", took)
	}
	for i := range calls {
		if code(calls[i].Err) != protocol.CodeUnavailable {
			t.Fatalf("call %d: %v, want unavailable", i, calls[i].Err)
		}
	}
	if sent := <-got; strings.Count(sent, "INCRBY") != 2 {
		t.Fatalf("Redis got %q, want the two INCRBY once each", sent)
	}
	// Later calls connect again, once the retry interval has passed, and
	// send only their own commands.
	var sent string
	waitfor.Until(t, callLimit, "a new connection to Redis", func() bool {
		c.batch("cache.incr", `{"key":"c"}`, `{"key":"d"}`)
		select {
		case sent = <-got:
			return true
		default:
			return false
		}
	})
	if strings.Contains(sent, "$1\r\na\r\n") || strings.Contains(sent, "$1\r\nb\r\n") {
		t.Fatalf("a failed command was sent again: %q", sent)
	}
}
