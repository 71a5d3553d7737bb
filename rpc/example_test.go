//go:build linux

package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// sum answers a list of integers with their sum. It waits on nothing, but a
// method that did would pass ctx on to it, so it ends at the call's deadline.
func sum(ctx context.Context, params []byte, rep *rpc.Reply) error {
	var terms []int64
	if err := json.Unmarshal(params, &terms); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "params must be a list of integers")
	}
	var total int64
	for _, n := range terms {
		total += n
	}
	rep.SetOut("sum_r")
	return rep.SetJSON(total)
}

// A method is a Handler registered under a name; a worker serving the
// registry answers it.
func ExampleRegistry_Register() {
	reg := rpc.NewRegistry()
	reg.Register("sum", rpc.Blocking, sum)
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
	for _, params := range []string{`[1, 2, 39]`, `"forty-two"`} {
		out, result, err := c.Call(context.Background(), "sum", []byte(params))
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(out, string(result))
	}
	// Output:
	// sum_r 42
	// bad_request: params must be a list of integers
}
