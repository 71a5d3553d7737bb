//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
)

// configFeeder serves a configuration file through a FIFO, so that the test
// knows when rpcd is reading it: the open for writing succeeds only once
// rpcd has it open for reading. Once it is, a regular file with the same
// text takes the FIFO's place for every later read.
type configFeeder struct {
	path  string
	text  string
	quit  chan struct{}
	done  chan struct{}
	first chan struct{} // closed when rpcd has opened the file
}

func startConfigFeeder(t *testing.T, text string, whileReading func()) *configFeeder {
	t.Helper()
	f := &configFeeder{path: filepath.Join(t.TempDir(), "rpcd.yaml"), text: text,
		quit: make(chan struct{}), done: make(chan struct{}), first: make(chan struct{})}
	if err := syscall.Mkfifo(f.path, 0o600); err != nil {
		t.Fatal(err)
	}
	go f.serve(t, whileReading)
	t.Cleanup(func() { close(f.quit); <-f.done })
	return f
}

// serve waits up to a minute for the first reader.
func (f *configFeeder) serve(t *testing.T, whileReading func()) {
	defer close(f.done)
	var fd int
	var err error
	quit := false
	waitfor.Poll(time.Minute, func() bool {
		select {
		case <-f.quit:
			quit = true
			return true
		default:
		}
		fd, err = syscall.Open(f.path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		return !errors.Is(err, syscall.ENXIO) // ENXIO: no reader yet
	})
	switch {
	case quit, errors.Is(err, syscall.ENXIO):
		return
	case err != nil:
		t.Errorf("open %s: %v", f.path, err)
		return
	}
	defer syscall.Close(fd)
	regular := f.path + ".regular"
	if err := os.WriteFile(regular, []byte(f.text), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(regular, f.path); err != nil {
		t.Error(err)
		return
	}
	close(f.first)
	whileReading()
	syscall.Write(fd, []byte(f.text))
}

// A signal that arrives while rpcd is still reading its configuration file,
// before the master runs, is acted on once it does, instead of killing it.
func TestSignalWhileStarting(t *testing.T) {
	tests := []struct {
		name    string
		sig     syscall.Signal
		waitFor func(e logEntry) bool
	}{
		{name: "SIGHUP reloads", sig: syscall.SIGHUP, waitFor: func(e logEntry) bool {
			return e.Msg == "new generation ready" && e.Fields["reason"] == "reload"
		}},
		{name: "SIGTERM stops", sig: syscall.SIGTERM, waitFor: func(e logEntry) bool { return e.Msg == "stopped" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *server
			launched := make(chan struct{})
			feeder := startConfigFeeder(t, "workers: 1\n", func() {
				<-launched
				if err := syscall.Kill(s.pid(), tt.sig); err != nil {
					t.Error(err)
				}
			})
			s = launch(t, "-config="+feeder.path, "-listen=127.0.0.1:0", "-log-format=json")
			close(launched)
			select {
			case <-feeder.first:
			case <-time.After(30 * time.Second):
				t.Fatal("rpcd never read its configuration file")
			}
			s.logs.wait(t, 30*time.Second, tt.waitFor)
			if tt.sig == syscall.SIGTERM {
				if code := s.waitExit(20 * time.Second); code != 0 {
					t.Fatalf("master exited %d, want 0", code)
				}
				return
			}
			mustPing(t, dial(t, addrOf(t, s)), `"after an early reload"`)
			if err := syscall.Kill(s.pid(), 0); err != nil {
				t.Fatalf("master %d: %v", s.pid(), err)
			}
		})
	}
}

// addrOf returns the address from the master's "master ready" line.
func addrOf(t *testing.T, s *server) string {
	t.Helper()
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	addr, _ := ready.Fields["addr"].(string)
	if addr == "" {
		t.Fatalf("master ready without an addr: %v", ready.Fields)
	}
	return addr
}
