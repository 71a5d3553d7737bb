package handlers

import (
	"context"
	"encoding/json"
	"math"
	"math/big"
	"strconv"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// Limits on n, so that one request cannot occupy a pool goroutine for long.
const (
	MaxFibN = 100000
	MaxPiN  = 10000000
)

// Register adds ping, fib and pi to reg.
func Register(reg *rpc.Registry) {
	reg.Register("ping", rpc.Inline, Ping)
	reg.Register("fib", rpc.Blocking, Fib)
	reg.Register("pi", rpc.Blocking, Pi)
}

// Ping answers "pong" with params unchanged.
func Ping(_ context.Context, params []byte, rep *rpc.Reply) error {
	rep.SetOut("pong")
	rep.SetRaw(params)
	return nil
}

// Fib answers "fib_r" with F(n).
func Fib(_ context.Context, params []byte, rep *rpc.Reply) error {
	n, err := intParam(params, "n", 0, MaxFibN)
	if err != nil {
		return err
	}
	rep.SetOut("fib_r")
	rep.SetRaw(Fibonacci(n).Append(nil, 10))
	return nil
}

// Pi answers "pi_r" with the series' value after n+1 terms.
func Pi(_ context.Context, params []byte, rep *rpc.Reply) error {
	n, err := intParam(params, "n", 0, MaxPiN)
	if err != nil {
		return err
	}
	rep.SetOut("pi_r")
	rep.SetRaw(strconv.AppendFloat(nil, PiSeries(n), 'g', -1, 64))
	return nil
}

// Fibonacci returns F(n) by fast doubling:
// F(2k) = F(k)·(2F(k+1) − F(k)) and F(2k+1) = F(k)² + F(k+1)².
func Fibonacci(n int) *big.Int {
	a, b := big.NewInt(0), big.NewInt(1) // F(k), F(k+1) with k = 0
	var t, u big.Int
	for bit := highBit(n); bit > 0; bit >>= 1 {
		t.Lsh(b, 1).Sub(&t, a).Mul(&t, a) // F(2k)
		u.Mul(a, a)
		b.Mul(b, b).Add(b, &u) // F(2k+1)
		a.Set(&t)
		if n&bit != 0 {
			a.Add(a, b)
			a, b = b, a // (F(2k+1), F(2k+2))
		}
	}
	return a
}

func highBit(n int) int {
	bit := 1
	for bit <= n>>1 {
		bit <<= 1
	}
	if n == 0 {
		return 0
	}
	return bit
}

// PiSeries returns sqrt(8 · Σ_{i=0..n} 1/(2i+1)²), adding terms in order of i
// as the course's Python does, so both give the same float64.
func PiSeries(n int) float64 {
	var s float64
	for i := 0; i <= n; i++ {
		d := float64((2*i + 1) * (2*i + 1))
		s += 1 / d
	}
	return math.Sqrt(8 * s)
}

// intParam reads an integer in [lo, hi] given bare (10) or as an object
// member ({"n": 10}).
func intParam(params []byte, name string, lo, hi int) (int, error) {
	raw := params
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return 0, protocol.Errorf(protocol.CodeBadRequest, "params: %v", err)
		}
		raw = obj[name]
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < lo || n > hi {
		return 0, protocol.Errorf(protocol.CodeBadRequest,
			"params must be an integer %s from %d to %d, bare or as {%q: %s}", name, lo, hi, name, name)
	}
	return n, nil
}
