package main

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/protocol"
)

// TestMain runs the greeter's main instead of the tests in a process the
// test started, so the test starts the real program.
func TestMain(m *testing.M) { rpcdtest.Main(m, main) }

// startGreeter runs the program on 127.0.0.1:0 and returns its address once
// its master logs that it is ready.
func startGreeter(t *testing.T) string {
	t.Helper()
	cmd := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0", "-workers=1", "-log-format=json")
	return rpcdtest.Serve(t, cmd)
}

func TestGreeterServes(t *testing.T) {
	c, err := client.Dial(startGreeter(t), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name       string
		method     string
		params     string
		wantOut    string
		wantResult string
		wantCode   string
	}{
		{name: "greet", method: "greet", params: `{"name": "Ada"}`, wantOut: "greeting", wantResult: `"Hello, Ada!"`},
		{name: "greet without name", method: "greet", params: `{}`, wantCode: protocol.CodeBadRequest},
		{name: "built-in ping", method: "ping", params: `"hi"`, wantOut: "pong", wantResult: `"hi"`},
		{name: "built-in fib", method: "fib", params: `10`, wantOut: "fib_r", wantResult: `55`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, result, err := c.Call(context.Background(), tt.method, []byte(tt.params))
			var pe *protocol.Error
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
			case err != nil || out != tt.wantOut || string(result) != tt.wantResult:
				t.Fatalf("got %s %s %v, want %s %s", out, result, err, tt.wantOut, tt.wantResult)
			}
		})
	}
}
