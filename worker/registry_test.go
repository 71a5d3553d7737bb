package worker

import (
	"slices"
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestRegistry(t *testing.T) {
	reg := NewRegistry()
	reg.Register("b", Blocking, pingHandler)
	reg.Register("a", Inline, pingHandler)
	if got := reg.Methods(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Methods = %q", got)
	}
	tests := []struct {
		name     string
		wantOK   bool
		wantMode Mode
	}{
		{name: "a", wantOK: true, wantMode: Inline},
		{name: "b", wantOK: true, wantMode: Blocking},
		{name: "c"},
		{name: ""},
	}
	for _, tt := range tests {
		h, mode, ok := reg.Lookup([]byte(tt.name))
		if ok != tt.wantOK || mode != tt.wantMode || (h != nil) != tt.wantOK {
			t.Errorf("Lookup(%q) = %v, %v, %v", tt.name, h != nil, mode, ok)
		}
	}
}

func TestRegisterPanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name   string
		method string
		mode   Mode
		h      Handler
	}{
		{name: "empty name", method: "", h: pingHandler},
		{name: "nil handler", method: "x"},
		{name: "bad mode", method: "x", mode: 7, h: pingHandler},
		{name: "duplicate", method: "ping", h: pingHandler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			reg.Register("ping", Inline, pingHandler)
			defer func() {
				if recover() == nil {
					t.Fatal("Register did not panic")
				}
			}()
			reg.Register(tt.method, tt.mode, tt.h)
		})
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Reply) error
		want string
	}{
		{name: "unset", set: func(*Reply) error { return nil }, want: "null"},
		{name: "raw", set: func(r *Reply) error { r.SetRaw([]byte(`[1]`)); return nil }, want: `[1]`},
		{name: "appended", set: func(r *Reply) error { r.AppendRaw([]byte(`[1`)); r.AppendRaw([]byte(`,2]`)); return nil }, want: `[1,2]`},
		{name: "json", set: func(r *Reply) error { return r.SetJSON(map[string]int{"n": 3}) }, want: `{"n":3}`},
	}
	var rep Reply
	for _, tt := range tests {
		rep.reset()
		if err := tt.set(&rep); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := string(rep.resultOrNull()); got != tt.want {
			t.Errorf("%s: result %s, want %s", tt.name, got, tt.want)
		}
	}
	if err := rep.SetJSON(func() {}); err == nil {
		t.Error("SetJSON accepted a func")
	}
}

func TestAnswerQueueKeepsOrder(t *testing.T) {
	var q answerQueue
	first := q.nextSeq()
	q.pushPending()
	q.readyTail().data = []byte("b")
	second := q.nextSeq()
	q.pushPending()
	if _, ok := q.popReady(); ok {
		t.Fatal("popped past a pending slot")
	}
	if !q.fill(second, []byte("c")) || q.fill(second, []byte("again")) || q.fill(99, nil) {
		t.Fatal("fill accepted a wrong slot or refused a right one")
	}
	q.fill(first, []byte("a"))
	var got []byte
	for data, ok := q.popReady(); ok; data, ok = q.popReady() {
		got = append(got, data...)
	}
	if string(got) != "abc" || !q.empty() || q.pooled != 0 {
		t.Fatalf("got %q, empty %v, pooled %d", got, q.empty(), q.pooled)
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
