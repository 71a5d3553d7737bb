//go:build linux

package cmd

import (
	"io"
	"testing"
)

func TestBudgetFlags(t *testing.T) {
	checkRuns(t, []runCase{
		{name: "negative max conns", args: []string{"-max-conns=-1"}, wantCode: 2, wantStderr: "-max-conns=-1: must not be negative"},
		{name: "budget below a frame", args: []string{"-max-frame=2MiB", "-max-buffer=1MiB"}, wantCode: 2, wantStderr: "-max-buffer=1MiB: must be at least -max-frame (2MiB)"},
		{name: "bad max buffer", args: []string{"-max-buffer=lots"}, wantCode: 2, wantStderr: "want a size"},
	})
	s, err := parseSettings([]string{"-max-conns=100", "-max-buffer=32MiB"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.workerConfig(nil); cfg.MaxConns != 100 || cfg.MaxBuffer != 32<<20 {
		t.Fatalf("worker config has MaxConns %d, MaxBuffer %d", cfg.MaxConns, cfg.MaxBuffer)
	}
}
