//go:build linux

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// With -cpuprofile-dir each worker writes a pprof CPU profile of its life.
func TestWorkerCPUProfile(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "-workers=1", "-cpuprofile-dir="+dir)
	mustPing(t, dial(t, s.addr), `"profiled"`)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "worker-0-*.pprof"))
	if len(files) != 1 {
		t.Fatalf("profiles in %s: %v, want one for slot 0", dir, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof profiles are gzipped
		t.Fatalf("%s is not a pprof profile (%d bytes)", files[0], len(b))
	}
}
