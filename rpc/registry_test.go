package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/rpcd/rpcd/protocol"
)

func pingHandler(_ context.Context, params []byte, rep *Reply) error {
	rep.SetOut("pong")
	rep.SetRaw(params)
	return nil
}

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
		{name: "reserved", method: "rpcd.hello", h: pingHandler},
		{name: "reserved, any", method: "rpcd.x", mode: Blocking, h: pingHandler},
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

// Names that only look like the reserved prefix are a method's own.
func TestRegisterNearReserved(t *testing.T) {
	reg := NewRegistry()
	for _, name := range []string{"rpcd", "rpcdx.y", "my.rpcd.hello", "RPCD.hello"} {
		reg.Register(name, Inline, pingHandler)
	}
	if n := len(reg.Methods()); n != 4 {
		t.Fatalf("%d methods registered, want 4", n)
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
		rep.Reset()
		if err := tt.set(&rep); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := answerResult(t, &rep); got != tt.want {
			t.Errorf("%s: result %s, want %s", tt.name, got, tt.want)
		}
	}
	if err := rep.SetJSON(func() {}); err == nil {
		t.Error("SetJSON accepted a func")
	}
}

// answerResult is the result member of the answer rep makes.
func answerResult(t *testing.T, rep *Reply) string {
	t.Helper()
	frame := AppendAnswer(nil, protocol.LittleEndian, rep, nil)
	body, _, err := protocol.Split(frame, protocol.LittleEndian, protocol.DefaultMaxFrame)
	var resp protocol.Response
	if err == nil {
		err = protocol.ParseResponse(body, &resp)
	}
	if err != nil {
		t.Fatalf("answer %q: %v", frame, err)
	}
	return string(resp.Result)
}

func TestAppendAnswerErrors(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantCode    string
		wantMessage string
	}{
		{name: "coded", err: protocol.Errorf(protocol.CodeBadRequest, "no n"),
			wantCode: protocol.CodeBadRequest, wantMessage: "no n"},
		{name: "wrapped coded", err: fmt.Errorf("look up: %w", protocol.Errorf("custom", "gone")),
			wantCode: "custom", wantMessage: "gone"},
		{name: "plain", err: errors.New("disk on fire"),
			wantCode: protocol.CodeInternal, wantMessage: "disk on fire"},
	}
	for _, tt := range tests {
		var rep Reply
		rep.SetOut("ignored")
		rep.SetRaw([]byte(`1`))
		frame := AppendAnswer(nil, protocol.BigEndian, &rep, tt.err)
		body, _, err := protocol.Split(frame, protocol.BigEndian, protocol.DefaultMaxFrame)
		var resp protocol.Response
		if err == nil {
			err = protocol.ParseResponse(body, &resp)
		}
		if err != nil {
			t.Fatalf("%s: answer %q: %v", tt.name, frame, err)
		}
		e, ok := resp.AsError()
		if !ok || e.Code != tt.wantCode || e.Message != tt.wantMessage {
			t.Errorf("%s: answer %s %s, want error %s %q", tt.name, resp.Out, resp.Result, tt.wantCode, tt.wantMessage)
		}
	}
}
