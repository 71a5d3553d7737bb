// Command rpcd is the prefork RPC server with the built-in methods ping, fib
// and pi. Run `rpcd -h` for its flags.
package main

import (
	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/worker"
)

func main() {
	cmd.Main(registry())
}

func registry() *worker.Registry {
	reg := worker.NewRegistry()
	handlers.Register(reg)
	return reg
}
