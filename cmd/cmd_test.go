//go:build linux

package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rpcd/rpcd/rpc"
)

// runCase is one run of the command: its arguments, its exit status and
// what its output must contain.
type runCase struct {
	name       string
	args       []string
	wantCode   int
	wantStdout string
	wantStderr string
}

// checkRuns runs each case, with prefix before its arguments.
func checkRuns(t *testing.T, tests []runCase, prefix ...string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(append(append([]string(nil), prefix...), tt.args...), rpc.NewRegistry(), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("stdout %q, stderr %q; want them to contain %q and %q",
					stdout.String(), stderr.String(), tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	tests := []runCase{
		{name: "version", args: []string{"-version"}, wantStdout: "rpcd "},
		{name: "help", args: []string{"-h"}, wantStderr: "Usage: rpcd [flags]"},
		{name: "help lists flags", args: []string{"-h"}, wantStderr: "-shutdown-timeout"},
		{name: "unknown flag", args: []string{"-nope"}, wantCode: 2, wantStderr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"serve"}, wantCode: 2, wantStderr: "unexpected argument \"serve\" (rpcd takes flags only)\nRun 'rpcd -h' for usage."},
		{name: "bad byte order", args: []string{"-byteorder=middle"}, wantCode: 2, wantStderr: "want little or big"},
		{name: "no workers", args: []string{"-workers=0"}, wantCode: 2, wantStderr: "need at least 1"},
		{name: "bad max frame", args: []string{"-max-frame=0"}, wantCode: 2, wantStderr: "want a size"},
		{name: "bad log level", args: []string{"-log-level=loud"}, wantCode: 2, wantStderr: "-log-level"},
		{name: "bad log format", args: []string{"-log-format=xml"}, wantCode: 2, wantStderr: "want console or json"},
		{name: "zero shutdown timeout", args: []string{"-shutdown-timeout=0s"}, wantCode: 2, wantStderr: "must be positive"},
	}
	checkRuns(t, tests)
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantStr string
		wantErr bool
	}{
		{in: "1MiB", want: 1 << 20, wantStr: "1MiB"},
		{in: "64KiB", want: 64 << 10, wantStr: "64KiB"},
		{in: "1000", want: 1000, wantStr: "1000"},
		{in: "1024MiB", want: 1 << 30, wantStr: "1024MiB"},
		{in: "1025MiB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1GB", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err != nil) != tt.wantErr {
			t.Fatalf("Set(%q) error = %v", tt.in, err)
		}
		if err == nil && (uint32(b) != tt.want || b.String() != tt.wantStr) {
			t.Fatalf("Set(%q) = %d %q, want %d %q", tt.in, uint32(b), b.String(), tt.want, tt.wantStr)
		}
	}
}
