//go:build linux

package worker

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/protocol"
)

func TestPingEchoesParams(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	tests := []struct {
		name, params, want string
	}{
		{name: "big integer", params: `12345678901234567890`, want: `12345678901234567890`},
		{name: "float", params: `3.5`, want: `3.5`},
		{name: "unicode", params: `"héllo ✓ 😀 \u00e9"`, want: `"héllo ✓ 😀 \u00e9"`},
		{name: "nested", params: `{"a":[1,{"b":null}],"c":{"d":[true,false]}}`, want: `{"a":[1,{"b":null}],"c":{"d":[true,false]}}`},
		{name: "spacing kept", params: `[ 1 , 2 ]`, want: `[ 1 , 2 ]`},
		{name: "absent", params: "", want: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, result := c.call("ping", tt.params)
			if out != "pong" || result != tt.want {
				t.Fatalf("got %s %s, want pong %s", out, result, tt.want)
			}
		})
	}
}

func TestRequestErrorsKeepConnection(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	tests := []struct {
		name     string
		frame    []byte
		wantCode string
		wantMsg  string // substring of the message
	}{
		{name: "malformed json", frame: rawFrame(`{"in":`), wantCode: protocol.CodeBadRequest},
		{name: "not an object", frame: rawFrame(`[1,2]`), wantCode: protocol.CodeBadRequest},
		{name: "missing in", frame: rawFrame(`{"params":1}`), wantCode: protocol.CodeBadRequest},
		{name: "in not a string", frame: rawFrame(`{"in":5}`), wantCode: protocol.CodeBadRequest},
		{name: "unknown method", frame: request("pnig", ""), wantCode: protocol.CodeUnknownMethod, wantMsg: "pnig"},
		{name: "plain error", frame: request("fail", ""), wantCode: protocol.CodeInternal, wantMsg: "disk on fire"},
		{name: "protocol error", frame: request("reject", ""), wantCode: protocol.CodeBadRequest, wantMsg: "no thanks"},
		{name: "panic", frame: request("panic", ""), wantCode: protocol.CodeInternal, wantMsg: "panic"},
		{name: "pooled panic", frame: request("panic_pooled", ""), wantCode: protocol.CodeInternal, wantMsg: "panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.write(tt.frame)
			e := c.errorAnswer()
			if e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
			c.expectPing()
		})
	}
	if n := s.logs.FilterMessage("handler panicked").FilterField(zap.String("method", "panic_pooled")).Len(); n != 1 {
		t.Errorf("pooled panic logged %d times, want once", n)
	}
}

func TestFramesInPieces(t *testing.T) {
	s := startWorker(t, Config{})
	tests := []struct {
		name  string
		chunk int // bytes per write
	}{
		{name: "byte by byte", chunk: 1},
		{name: "header split", chunk: 3},
		{name: "big chunks", chunk: 1000},
	}
	params := fmt.Sprintf(`"%s"`, strings.Repeat("p", 3000))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s.addr)
			frames := append(request("ping", params), request("ping", `"second"`)...)
			for chunk := range pieces(frames, tt.chunk) {
				c.write(chunk)
			}
			if out, result := c.answer(); out != "pong" || result != params {
				t.Fatalf("first answer %s %.20s", out, result)
			}
			if out, result := c.answer(); out != "pong" || result != `"second"` {
				t.Fatalf("second answer %s %s", out, result)
			}
		})
	}
}

// pieces yields b in pieces of at most n bytes.
func pieces(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func TestManyFramesInOneWrite(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	const n = 2000
	var batch []byte
	for i := range n {
		batch = append(batch, request("ping", fmt.Sprint(i))...)
	}
	c.write(batch)
	for i := range n {
		if out, result := c.answer(); out != "pong" || result != fmt.Sprint(i) {
			t.Fatalf("answer %d: %s %s", i, out, result)
		}
	}
}

func TestAnswersInRequestOrder(t *testing.T) {
	s := startWorker(t, Config{PoolSize: 4})
	c := dial(t, s.addr)
	var batch []byte
	for _, r := range [][2]string{
		{"ping", `1`}, {"slow", `"a"`}, {"ping", `2`}, {"slow", `"b"`},
		{"panic_pooled", ""}, {"ping", `3`}, {"nope", ""},
	} {
		batch = append(batch, request(r[0], r[1])...)
	}
	c.write(batch)
	s.gates.waitStarted(t, "a")
	s.gates.waitStarted(t, "b")
	s.gates.open("b")
	s.gates.open("a")
	want := []string{`pong 1`, `slow "a"`, `pong 2`, `slow "b"`, `error internal`, `pong 3`, `error unknown_method`}
	for i, w := range want {
		if got := describe(c.answer()); got != w {
			t.Fatalf("answer %d = %s, want %s", i, got, w)
		}
	}
}

func TestBlockingDoesNotDelayOtherConns(t *testing.T) {
	s := startWorker(t, Config{PoolSize: 2})
	held, other := dial(t, s.addr), dial(t, s.addr)
	held.write(request("slow", `"held"`))
	s.gates.waitStarted(t, "held")
	other.expectPing()
	s.gates.open("held")
	if got := describe(held.answer()); got != `slow "held"` {
		t.Fatalf("held answer = %s", got)
	}
}

func TestOverloadedWhenQueueFull(t *testing.T) {
	s := startWorker(t, Config{PoolSize: 1, QueueSize: 1})
	c := dial(t, s.addr)
	c.write(request("slow", `"running"`))
	s.gates.waitStarted(t, "running")
	// The pool's one goroutine is busy: the first request below fills the
	// queue, the second finds it full.
	c.write(append(append(request("slow", `"queued"`), request("slow", `"rejected"`)...), request("ping", `1`)...))
	s.waitStats(t, "all four requests read", func(st Stats) bool { return st.Requests == 4 })
	s.gates.open("running")
	s.gates.open("queued")
	want := []string{`slow "running"`, `slow "queued"`, `error overloaded`, `pong 1`}
	for i, w := range want {
		if got := describe(c.answer()); got != w {
			t.Fatalf("answer %d = %s, want %s", i, got, w)
		}
	}
}

func TestFramingErrorsCloseConnection(t *testing.T) {
	s := startWorker(t, Config{MaxFrame: 1024})
	header := func(n uint32) []byte {
		b := make([]byte, protocol.HeaderSize)
		protocol.LittleEndian.PutLen(b, n)
		return b
	}
	tests := []struct {
		name     string
		send     []byte
		wantCode string
	}{
		{name: "zero length", send: header(0), wantCode: protocol.CodeBadFrame},
		{name: "over max", send: append(header(1025), strings.Repeat("x", 1025)...), wantCode: protocol.CodeFrameTooLarge},
		{name: "advertised 1 GiB", send: append(header(1<<30), "{}"...), wantCode: protocol.CodeFrameTooLarge},
		{name: "header split", send: header(0)[:2], wantCode: protocol.CodeBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s.addr)
			c.write(request("ping", `"before"`))
			c.write(tt.send)
			if tt.name == "header split" {
				c.write(header(0)[2:])
			}
			if got := describe(c.answer()); got != `pong "before"` {
				t.Fatalf("first answer = %s", got)
			}
			if e := c.errorAnswer(); e.Code != tt.wantCode {
				t.Fatalf("got %s %q, want %s", e.Code, e.Message, tt.wantCode)
			}
			c.expectEOF()
		})
	}
}

func TestPeerHalfCloseGetsAnswers(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	c.write(append(request("slow", `"after eof"`), request("ping", `2`)...))
	if err := c.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	s.gates.waitStarted(t, "after eof")
	s.gates.open("after eof")
	for i, w := range []string{`slow "after eof"`, `pong 2`} {
		if got := describe(c.answer()); got != w {
			t.Fatalf("answer %d = %s, want %s", i, got, w)
		}
	}
	c.expectEOF()
}

func TestPooledRequestsPerConnCapped(t *testing.T) {
	s := startWorker(t, Config{PoolSize: 1, QueueSize: 2 * maxPooledPerConn})
	c := dial(t, s.addr)
	const sent = maxPooledPerConn + 50
	var batch []byte
	for range sent {
		batch = append(batch, request("slow", `"gate"`)...)
	}
	c.write(batch)
	st := s.waitStats(t, "the cap to be reached", func(st Stats) bool { return st.Requests >= maxPooledPerConn })
	if st.Requests != maxPooledPerConn {
		t.Fatalf("read %d requests, want reading paused at %d", st.Requests, maxPooledPerConn)
	}
	s.gates.open("gate")
	for i := range sent {
		if got := describe(c.answer()); got != `slow "gate"` {
			t.Fatalf("answer %d = %s", i, got)
		}
	}
}

func TestLargeFrameAcrossReads(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	params := `"` + strings.Repeat("L", 900<<10) + `"`
	c.write(append(request("ping", params), request("ping", "2")...))
	if out, result := c.answer(); out != "pong" || result != params {
		t.Fatalf("large answer %s, %d bytes", out, len(result))
	}
	if got := describe(c.answer()); got != "pong 2" {
		t.Fatalf("answer after the large one = %s", got)
	}
}

func TestBigEndianFrames(t *testing.T) {
	s := startWorker(t, Config{ByteOrder: protocol.BigEndian})
	c := dial(t, s.addr)
	c.write(protocol.AppendRequest(nil, protocol.BigEndian, "ping", []byte(`"be"`)))
	body, err := c.frame(protocol.BigEndian)
	if want := `{"out":"pong","result":"be"}`; err != nil || string(body) != want {
		t.Fatalf("answer %s, %v; want %s", body, err, want)
	}
}

func TestDebugLogsPerRequest(t *testing.T) {
	s := startWorkerLogging(t, Config{}, zapcore.DebugLevel)
	c := dial(t, s.addr)
	c.expectPing()
	c.conn.Close()
	for _, msg := range []string{"loop started", "comes", "request", "bye"} {
		s.waitLog(t, msg)
	}
	if e := s.logs.FilterMessage("request").All()[0]; e.ContextMap()["in"] != "ping" {
		t.Errorf("request log fields %v", e.ContextMap())
	}
}
