package rpc

import (
	"context"
	"testing"
)

func echoBatch(_ context.Context, calls []Call) {
	for i := range calls {
		calls[i].Reply.SetRaw(calls[i].Params)
	}
}

func TestRegisterBatch(t *testing.T) {
	reg := NewRegistry()
	reg.RegisterBatch("e", echoBatch)
	reg.Register("b", Blocking, pingHandler)
	if h, mode, ok := reg.Lookup([]byte("e")); !ok || mode != Batch || h != nil {
		t.Fatalf("Lookup(e) = %v, %v, %v; want a Batch method without a Handler", h != nil, mode, ok)
	}
	tests := []struct {
		name   string
		wantOK bool
	}{
		{name: "e", wantOK: true},
		{name: "b"},
		{name: "none"},
	}
	for _, tt := range tests {
		if h, ok := reg.LookupBatch([]byte(tt.name)); ok != tt.wantOK || (h != nil) != tt.wantOK {
			t.Errorf("LookupBatch(%q) = %v, %v", tt.name, h != nil, ok)
		}
	}
}

func TestRegisterBatchPanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name   string
		method string
		h      BatchHandler
		mode   bool // register through Register with mode Batch instead
	}{
		{name: "empty name", method: "", h: echoBatch},
		{name: "nil handler", method: "x"},
		{name: "duplicate", method: "ping", h: echoBatch},
		{name: "Batch through Register", method: "x", mode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			reg.Register("ping", Inline, pingHandler)
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			if tt.mode {
				reg.Register(tt.method, Batch, pingHandler)
			}
			reg.RegisterBatch(tt.method, tt.h)
		})
	}
}
