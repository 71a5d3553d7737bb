// Command greeter is rpcd with one more method: a complete server binary,
// master, workers, flags and signals included, built from a few lines.
//
//	go run ./examples/greeter -workers=2
//
// It answers {"in": "greet", "params": {"name": "Ada"}} with
// {"out": "greeting", "result": "Hello, Ada!"}, besides ping, fib and pi.
package main

import (
	"context"
	"encoding/json"

	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

func main() {
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	reg.Register("greet", rpc.Inline, greet)
	cmd.Main(reg)
}

// greet answers "Hello, NAME!".
func greet(_ context.Context, params []byte, rep *rpc.Reply) error {
	var p struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.Name == "" {
		return protocol.Errorf(protocol.CodeBadRequest, `params must be {"name": "..."}`)
	}
	rep.SetOut("greeting")
	return rep.SetJSON("Hello, " + p.Name + "!")
}
