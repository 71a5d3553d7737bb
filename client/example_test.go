//go:build linux

package client_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// A client calls methods and gets the server's error codes as *client.Error.
func Example() {
	reg := rpc.NewRegistry()
	handlers.Register(reg) // ping, fib, pi
	addr, stop, err := workertest.Serve(worker.Config{}, reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	c, err := client.Dial(addr, client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()

	out, result, err := c.Call(ctx, "fib", []byte(`{"n": 90}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out, string(result))

	_, _, err = c.Call(ctx, "fib", []byte(`-1`))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
	}

	// A ping may run twice, so it may be sent again if its connection fails.
	out, result, err = c.Call(ctx, "ping", []byte(`"ireader 0"`), client.Idempotent())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out, string(result))
	// Output:
	// fib_r 2880067194370816120
	// bad_request
	// pong "ireader 0"
}
