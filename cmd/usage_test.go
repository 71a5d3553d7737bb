//go:build linux

package cmd

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/rpc"
)

// runArgs runs rpcd with args and returns its exit status and output.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(args, rpc.NewRegistry(), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpGivesOneDefaultPerFlag(t *testing.T) {
	code, _, help := runArgs("-h")
	if code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	// Each flag is a line "  -name type" and its indented usage.
	for _, entry := range strings.Split(help, "\n  -")[1:] {
		if n := strings.Count(entry, "default"); n > 1 {
			t.Errorf("-%s: %d defaults in\n%s", strings.Fields(entry)[0], n, entry)
		}
	}
	if !strings.Contains(help, "-idle-timeout duration\n") {
		t.Errorf("-h does not name the type of -idle-timeout:\n%s", help)
	}
}

func TestBadFlagIsOneLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown flag", args: []string{"-nope"},
			want: "rpcd: flag provided but not defined: -nope\nRun 'rpcd -h' for usage.\n"},
		{name: "bad int", args: []string{"-workers=x"},
			want: "rpcd: invalid value \"x\" for flag -workers: parse error\nRun 'rpcd -h' for usage.\n"},
		{name: "duration without unit", args: []string{"-idle-timeout=5"},
			want: "rpcd: invalid value \"5\" for flag -idle-timeout: a duration needs a unit, like 5s or 5ms\nRun 'rpcd -h' for usage.\n"},
		{name: "not a duration", args: []string{"-read-timeout", "soon"},
			want: "rpcd: invalid value \"soon\" for flag -read-timeout: want a duration, like 500ms, 30s or 1m30s\nRun 'rpcd -h' for usage.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(tt.args...)
			if code != 2 || stdout != "" || stderr != tt.want {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

func TestEveryDurationFlagWantsAUnit(t *testing.T) {
	var durations []string
	newFlagSet(&options{}, io.Discard).VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok && isDuration(g) {
			durations = append(durations, f.Name)
		}
	})
	if len(durations) < 5 {
		t.Fatalf("only %d duration flags: %v", len(durations), durations)
	}
	for _, name := range durations {
		if code, _, stderr := runArgs("-" + name + "=5"); code != 2 || !strings.Contains(stderr, "needs a unit, like 5s") {
			t.Errorf("-%s=5: exit %d, stderr %q", name, code, stderr)
		}
	}
	if code, _, stderr := runArgs("-t", "-idle-timeout=0"); code != 0 {
		t.Errorf("-idle-timeout=0: exit %d, stderr %q; 0 needs no unit", code, stderr)
	}
}

func isDuration(g flag.Getter) bool {
	_, ok := g.Get().(time.Duration)
	return ok
}

func TestConfigDurationWantsAUnit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcd.yaml")
	if err := os.WriteFile(path, []byte("idle-timeout: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs("-t", "-config="+path)
	if code != 2 || !strings.Contains(stderr, "idle-timeout: a duration needs a unit, like 5s") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
