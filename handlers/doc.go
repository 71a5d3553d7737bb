// Package handlers holds rpcd's built-in methods and registers them on a
// rpc.Registry:
//
//   - ping (inline): answers "pong" with the params echoed byte for byte.
//   - fib (blocking): params n, an integer from 0 to 100000, bare or as {"n": n};
//     answers "fib_r" with the Fibonacci number F(n) as an exact JSON integer.
//     From n = 20578 on it has more than 4300 digits, which Python 3.11 and
//     later refuse to decode by default: a Python client calls
//     sys.set_int_max_str_digits(0) first.
//   - pi (blocking): params n, an integer from 0 to 10000000, bare or as {"n": n};
//     answers "pi_r" with sqrt(8 · Σ_{i=0..n} 1/(2i+1)²), summed in order of i.
//
// Params a method cannot take answer bad_request. fib and pi run on the worker's
// offload pool, so a large n never delays other connections' requests.
package handlers
