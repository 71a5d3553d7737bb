package handlers

import (
	"context"
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

func TestFibonacciMatchesIteration(t *testing.T) {
	a, b := big.NewInt(0), big.NewInt(1)
	for n := 0; n <= 1000; n++ {
		if got := Fibonacci(n); got.Cmp(a) != 0 {
			t.Fatalf("F(%d) = %v, want %v", n, got, a)
		}
		a.Add(a, b)
		a, b = b, a
	}
}

// TestFibonacciPythonDigitLimit holds the package doc to its word: from
// n = 20578 on, F(n) exceeds the 4300 digits Python's int conversion allows
// by default.
func TestFibonacciPythonDigitLimit(t *testing.T) {
	if d := len(Fibonacci(20577).String()); d != 4300 {
		t.Errorf("F(20577) has %d digits, want 4300", d)
	}
	if d := len(Fibonacci(20578).String()); d != 4301 {
		t.Errorf("F(20578) has %d digits, want 4301", d)
	}
}

func TestFibonacciLarge(t *testing.T) {
	if got := Fibonacci(MaxFibN).String(); len(got) != 20899 || got[:10] != "2597406934" {
		t.Fatalf("F(100000) has %d digits starting %s", len(got), got[:10])
	}
}

func TestPiSeries(t *testing.T) {
	if got := PiSeries(0); got != math.Sqrt(8) {
		t.Fatalf("PiSeries(0) = %v", got)
	}
	if got := PiSeries(1000000); math.Abs(got-math.Pi) > 1e-6 {
		t.Fatalf("PiSeries(1e6) = %v, too far from pi", got)
	}
}

func TestHandlers(t *testing.T) {
	tests := []struct {
		name       string
		h          rpc.Handler
		params     string
		wantOut    string
		wantResult string
		wantCode   string
	}{
		{name: "ping echoes", h: Ping, params: `{"a": [1, 2.50]}`, wantOut: "pong", wantResult: `{"a": [1, 2.50]}`},
		{name: "fib bare", h: Fib, params: `100`, wantOut: "fib_r", wantResult: `354224848179261915075`},
		{name: "fib object", h: Fib, params: `{"n": 10}`, wantOut: "fib_r", wantResult: `55`},
		{name: "fib zero", h: Fib, params: `0`, wantOut: "fib_r", wantResult: `0`},
		{name: "fib negative", h: Fib, params: `-1`, wantCode: protocol.CodeBadRequest},
		{name: "fib too large", h: Fib, params: `100001`, wantCode: protocol.CodeBadRequest},
		{name: "fib float", h: Fib, params: `10.5`, wantCode: protocol.CodeBadRequest},
		{name: "fib string", h: Fib, params: `"10"`, wantCode: protocol.CodeBadRequest},
		{name: "fib null", h: Fib, params: `null`, wantCode: protocol.CodeBadRequest},
		{name: "fib object without n", h: Fib, params: `{"m": 1}`, wantCode: protocol.CodeBadRequest},
		{name: "pi", h: Pi, params: `0`, wantOut: "pi_r", wantResult: `2.8284271247461903`},
		{name: "pi object", h: Pi, params: `{"n":2}`, wantOut: "pi_r", wantResult: `3.0346151137976114`},
		{name: "pi too large", h: Pi, params: `10000001`, wantCode: protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rep rpc.Reply
			err := tt.h(context.Background(), []byte(tt.params), &rep)
			if tt.wantCode != "" {
				var perr *protocol.Error
				if !errors.As(err, &perr) || perr.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Out() != tt.wantOut || string(rep.Result()) != tt.wantResult {
				t.Fatalf("got %s %s, want %s %s", rep.Out(), rep.Result(), tt.wantOut, tt.wantResult)
			}
		})
	}
}
