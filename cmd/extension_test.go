//go:build linux

package cmd

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/rpc"
)

// levelExt is an extension with one flag, -probe-level, that must not be
// negative; its services record their starts and stops in events.
type levelExt struct {
	name    string
	events  *[]string
	failing bool
}

type levelSettings struct {
	ext   levelExt
	level int
}

func (e levelExt) Flags(fs *flag.FlagSet) ExtensionSettings {
	s := &levelSettings{ext: e}
	if e.name == "probe" {
		fs.IntVar(&s.level, "probe-level", 0, "a level that must not be negative")
	}
	return s
}

func (s *levelSettings) Check() error {
	if s.level < 0 {
		return errors.New("-probe-level must not be negative")
	}
	return nil
}

func (s *levelSettings) Announce(*zap.Logger) {}

func (s *levelSettings) Start(WorkerInfo) (func(), error) {
	if s.ext.failing {
		return nil, errors.New("cannot start")
	}
	*s.ext.events = append(*s.ext.events, "start "+s.ext.name)
	return func() { *s.ext.events = append(*s.ext.events, "stop "+s.ext.name) }, nil
}

func TestExtensionFlagsAreSettings(t *testing.T) {
	ext := levelExt{name: "probe", events: new([]string)}
	file := filepath.Join(t.TempDir(), "rpcd.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		file       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "flag", args: []string{"-probe-level=3"}},
		{name: "config key", file: "probe-level: 3\n"},
		{name: "checked on the command line", args: []string{"-probe-level=-1"}, wantCode: 2, wantStderr: "must not be negative"},
		{name: "checked in the file", file: "probe-level: -1\n", wantCode: 2, wantStderr: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-t"}, tt.args...)
			if tt.file != "" {
				write(tt.file)
				args = append(args, "-config="+file)
			}
			var stdout, stderr bytes.Buffer
			code := Run(args, rpc.NewRegistry(), &stdout, &stderr, ext)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("rpcd %v: exit %d, stderr %q; want %d and %q", args, code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
	var stderr bytes.Buffer
	if code := Run([]string{"-t", "-probe-level=3"}, rpc.NewRegistry(), &bytes.Buffer{}, &stderr); code != 2 {
		t.Fatalf("-probe-level without its extension: exit %d, want 2", code)
	}
}

func TestExtensionSettingsReachWorkers(t *testing.T) {
	ext := levelExt{name: "probe", events: new([]string)}
	file := filepath.Join(t.TempDir(), "rpcd.yaml")
	if err := os.WriteFile(file, []byte("probe-level: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := parseSettings([]string{"-config=" + file}, []Extension{ext}, &bytes.Buffer{})
	if err == nil {
		err = s.finish()
	}
	if err != nil {
		t.Fatal(err)
	}
	args := s.workerArgs()
	if !slices.Contains(args, "-probe-level=7") {
		t.Fatalf("worker args %v lack -probe-level=7 from the file", args)
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-config=") }) {
		t.Fatalf("worker args %v name the file, which a worker must not read", args)
	}
}

func TestStartExtensionsStopsStartedOnFailure(t *testing.T) {
	var events []string
	exts := []ExtensionSettings{
		&levelSettings{ext: levelExt{name: "a", events: &events}},
		&levelSettings{ext: levelExt{name: "b", events: &events}},
		&levelSettings{ext: levelExt{name: "c", events: &events, failing: true}},
	}
	if _, err := startExtensions(exts, WorkerInfo{Log: zap.NewNop()}); err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("startExtensions = %v, want the failing one's error", err)
	}
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}

	events = nil
	stop, err := startExtensions(exts[:2], WorkerInfo{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if want := []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
}
