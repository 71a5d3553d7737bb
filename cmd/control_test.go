//go:build linux

package cmd

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap"
)

func TestWritePidfile(t *testing.T) {
	tests := []struct {
		name     string
		existing string // the file's content before; "" for no file
		wantBack string // its content after the remove func ran; "" for no file
	}{
		{name: "no file", existing: "", wantBack: ""},
		{name: "stale pid", existing: "999999999\n", wantBack: ""},
		{name: "own pid (re-executed master)", existing: strconv.Itoa(os.Getpid()) + "\n", wantBack: ""},
		// A second master started by mistake fails to bind; the running
		// master's pidfile must survive it.
		{name: "running process", existing: strconv.Itoa(os.Getppid()) + "\n", wantBack: strconv.Itoa(os.Getppid()) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rpcd.pid")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			remove := writePidfile(&options{pidFile: path}, zap.NewNop())
			if tt.wantBack == "" {
				b, err := os.ReadFile(path)
				if want := strconv.Itoa(os.Getpid()) + "\n"; err != nil || string(b) != want {
					t.Fatalf("pidfile holds %q, %v; want %q", b, err, want)
				}
			}
			remove()
			b, err := os.ReadFile(path)
			switch {
			case tt.wantBack == "" && !os.IsNotExist(err):
				t.Errorf("pidfile left behind: %q, %v", b, err)
			case tt.wantBack != "" && string(b) != tt.wantBack:
				t.Errorf("pidfile holds %q, %v; want %q", b, err, tt.wantBack)
			}
		})
	}
}
