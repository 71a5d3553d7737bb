package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rpcd/rpcd/internal/etcdtest"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/registry"
)

// rpcctl finds the server registered in etcd under the service.
func TestEtcdTarget(t *testing.T) {
	e := etcdtest.Start(t)
	addr := serve(t, protocol.LittleEndian)
	c, err := etcdv3.New([]string{e.Addr})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(registry.Record{Addr: addr, Weight: 1})
	if _, err := c.Put(context.Background(), []byte(registry.Key(registry.DefaultPrefix, "rpcd", addr)), v, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		target     string
		wantExit   int
		wantStdout string
		wantStderr string
	}{
		{name: "registered", target: "etcd://" + e.Addr + "/rpcd", wantStdout: "\"e\"\n"},
		{name: "nobody registered", target: "etcd://" + e.Addr + "/other", wantExit: 1, wantStderr: "dial etcd://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			exit := run([]string{"-addr", tt.target, "-timeout", "2s", "call", "ping", `"e"`}, &stdout, &stderr)
			if exit != tt.wantExit || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					exit, stdout.String(), stderr.String(), tt.wantExit, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
