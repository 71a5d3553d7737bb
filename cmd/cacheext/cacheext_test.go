//go:build linux

package cacheext

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/handlers/cache"
	"github.com/rpcd/rpcd/rpc"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		withExt    bool
		wantCode   int
		wantStderr string
	}{
		{name: "redis settings", args: []string{"-redis=127.0.0.1:6379", "-redis-db=2"}, withExt: true},
		{name: "negative db", args: []string{"-redis-db=-1"}, withExt: true, wantCode: 2, wantStderr: "-redis-db=-1: must not be negative"},
		{name: "without the extension", args: []string{"-redis=127.0.0.1:6379"}, wantCode: 2, wantStderr: "flag provided but not defined: -redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exts []cmd.Extension
			if tt.withExt {
				exts = append(exts, New(cache.New()))
			}
			var stdout, stderr bytes.Buffer
			code := cmd.Run(append([]string{"-t"}, tt.args...), rpc.NewRegistry(), &stdout, &stderr, exts...)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}
