//go:build linux

package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// sum answers a list of integers with their sum. As a Blocking method its
// ctx carries the call's deadline; sum waits on nothing, so it needs none.
func sum(_ context.Context, params []byte, rep *rpc.Reply) error {
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
// registry answers it. Here a worker in this process serves it, and the
// call goes over the wire as any client sends it.
func ExampleRegistry_Register() {
	reg := rpc.NewRegistry()
	reg.Register("sum", rpc.Blocking, sum)
	addr, stop, err := workertest.Serve(worker.Config{}, reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	for _, params := range []string{`[1, 2, 39]`, `"forty-two"`} {
		frame := protocol.AppendRequest(nil, protocol.LittleEndian, "sum", []byte(params))
		if _, err := conn.Write(frame); err != nil {
			fmt.Println(err)
			return
		}
		body, err := protocol.ReadFrame(conn, protocol.LittleEndian, protocol.DefaultMaxFrame, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(body))
	}
	// Output:
	// {"out":"sum_r","result":42}
	// {"out":"error","result":{"code":"bad_request","message":"params must be a list of integers"}}
}
