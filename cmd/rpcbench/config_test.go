package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring of the error; "" for success
		check   func(t *testing.T, cfg config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, cfg config) {
				if cfg.addr != "127.0.0.1:8080" || cfg.conns != 10 || cfg.depth != 1 ||
					cfg.duration != 10*time.Second || cfg.method != "ping" || string(cfg.params) != `"hello"` {
					t.Errorf("defaults = %+v", cfg)
				}
			},
		},
		{
			name: "all flags",
			args: []string{"-addr", "127.0.0.1:9", "-c", "3", "-depth", "32", "-d", "2s", "-in", "fib",
				"-params", ` { "n" : [1, 2] } `, "-byteorder", "big", "-pid", "7", "-json",
				"-warmup", "1s", "-n", "50"},
			check: func(t *testing.T, cfg config) {
				want := config{addr: "127.0.0.1:9", conns: 3, depth: 32, duration: 2 * time.Second,
					warmup: time.Second, total: 50, method: "fib", params: []byte(`{"n":[1,2]}`),
					byteOrder: protocol.BigEndian, pid: 7, json: true}
				if cfg.addr != want.addr || cfg.conns != want.conns || cfg.depth != want.depth ||
					cfg.duration != want.duration || cfg.warmup != want.warmup || cfg.total != want.total ||
					cfg.method != want.method || !bytes.Equal(cfg.params, want.params) ||
					cfg.byteOrder != want.byteOrder || cfg.pid != want.pid || cfg.json != want.json {
					t.Errorf("got %+v, want %+v", cfg, want)
				}
			},
		},
		{name: "no time limit with a total", args: []string{"-d", "0", "-n", "10"}},
		{name: "unbounded run", args: []string{"-d", "0"}, wantErr: "needs -n"},
		{name: "zero conns", args: []string{"-c", "0"}, wantErr: "-c must be"},
		{name: "zero depth", args: []string{"-depth", "0"}, wantErr: "-depth must be"},
		{name: "negative duration", args: []string{"-d", "-1s"}, wantErr: "-d must not"},
		{name: "negative warmup", args: []string{"-warmup", "-1s"}, wantErr: "-warmup must not"},
		{name: "negative total", args: []string{"-n", "-1"}, wantErr: "-n must not"},
		{name: "negative pid", args: []string{"-pid", "-1"}, wantErr: "-pid must be"},
		{name: "empty method", args: []string{"-in", ""}, wantErr: "-in must"},
		{name: "params not JSON", args: []string{"-params", "{x"}, wantErr: "-params"},
		{name: "two params values", args: []string{"-params", "1 2"}, wantErr: "-params"},
		{name: "bad byte order", args: []string{"-byteorder", "middle"}, wantErr: "-byteorder"},
		{name: "addr without port", args: []string{"-addr", "localhost"}, wantErr: "-addr"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"-z"}, wantErr: "invalid flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseArgs(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseArgs(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseArgs([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseArgs(-h) error = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-depth") {
		t.Errorf("usage does not list -depth:\n%s", out.String())
	}
}

func TestRunExitStatusForUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "help", args: []string{"-h"}, want: 0},
		{name: "unknown flag", args: []string{"-nope"}, want: 2},
		{name: "invalid value", args: []string{"-c", "0"}, want: 2},
		{name: "missing server pid", args: []string{"-pid", "999999999", "-n", "1"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, &stdout, &stderr); got != tt.want {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.want, stderr.String())
			}
		})
	}
}
