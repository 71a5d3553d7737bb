package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// serve runs a worker with the built-in methods on 127.0.0.1 in this process.
func serve(t *testing.T, order protocol.ByteOrder) string {
	t.Helper()
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	reg.Register("fail", rpc.Inline, func(context.Context, []byte, *rpc.Reply) error {
		return protocol.Errorf("custom", "it failed")
	})
	return workertest.Start(t, worker.Config{ByteOrder: order}, reg)
}

func TestRun(t *testing.T) {
	little, big := serve(t, protocol.LittleEndian), serve(t, protocol.BigEndian)
	tests := []struct {
		name       string
		args       []string
		wantExit   int
		wantStdout string // a substring
		wantStderr string // a substring
	}{
		{name: "ping", args: []string{"-addr", little, "call", "ping", `"hi"`}, wantStdout: "\"hi\"\n"},
		{name: "flags after call", args: []string{"call", "-addr", little, "-timeout", "5s", "ping", `[1, 2]`}, wantStdout: "[1, 2]\n"},
		{name: "no params", args: []string{"-addr", little, "call", "ping"}, wantStdout: "null\n"},
		{name: "fib", args: []string{"-addr", little, "call", "fib", `{"n": 90}`}, wantStdout: "2880067194370816120\n"},
		{name: "big endian", args: []string{"-addr", big, "-byteorder", "big", "call", "ping", `"b"`}, wantStdout: "\"b\"\n"},
		{name: "error answer", args: []string{"-addr", little, "call", "fail"}, wantExit: 1, wantStderr: "custom: it failed\n"},
		{name: "unknown method", args: []string{"-addr", little, "call", "nope"}, wantExit: 1, wantStderr: "unknown_method: "},
		{name: "load", args: []string{"-addr", little, "-n", "500", "-c", "4", "call", "ping", `"x"`}, wantStdout: "calls/s, 0 failed\n"},
		{name: "load with errors", args: []string{"-addr", little, "-n", "20", "-c", "2", "call", "fail"}, wantExit: 1, wantStderr: "20 of 20 calls failed"},
		{name: "no call", args: []string{"-addr", little, "ping"}, wantExit: 2, wantStderr: "Usage"},
		{name: "bad byte order", args: []string{"-byteorder", "middle", "call", "ping"}, wantExit: 2, wantStderr: "-byteorder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			exit := run(tt.args, &stdout, &stderr)
			if exit != tt.wantExit || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					exit, stdout.String(), stderr.String(), tt.wantExit, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
