//go:build linux

package cmd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// listenNotify opens a datagram socket at name, as a service manager does.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readNotice returns the next datagram on conn.
func readNotice(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// The notifier sends each state the master's hooks report, and workers do
// not get NOTIFY_SOCKET, which stays with the master for its upgrades.
func TestServiceNotifier(t *testing.T) {
	tests := []struct {
		name   string
		socket string
	}{
		{name: "path", socket: filepath.Join(t.TempDir(), "notify.sock")},
		{name: "abstract", socket: fmt.Sprintf("@rpcd-notify-test-%d", os.Getpid())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenNotify(t, tt.socket)
			t.Setenv(notifySocketEnv, tt.socket)
			n := newServiceNotifier(zap.NewNop())
			if n == nil {
				t.Fatal("no notifier with NOTIFY_SOCKET set")
			}
			if os.Getenv(notifySocketEnv) != tt.socket {
				t.Fatalf("%s unset in the master; an upgraded image could not notify", notifySocketEnv)
			}
			for _, kv := range workerEnv(nil) {
				if strings.HasPrefix(kv, notifySocketEnv+"=") {
					t.Fatalf("worker environment has %s", kv)
				}
			}
			cfg := n.hooks()
			cfg.OnReady()
			want := fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())
			if got := readNotice(t, conn); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			cfg.OnReloading()
			if got := readNotice(t, conn); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`).MatchString(got) {
				t.Fatalf("on reloading got %q, want RELOADING=1 and MONOTONIC_USEC", got)
			}
			cfg.OnReloaded(errors.New("bad config"))
			if got := readNotice(t, conn); got != "READY=1" {
				t.Fatalf("on reloaded got %q, want READY=1", got)
			}
			cfg.OnStopping()
			if got := readNotice(t, conn); got != "STOPPING=1" {
				t.Fatalf("on stopping got %q, want STOPPING=1", got)
			}
		})
	}
}

func TestServiceNotifierUnset(t *testing.T) {
	t.Setenv(notifySocketEnv, "")
	n := newServiceNotifier(zap.NewNop())
	if n != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET")
	}
	if cfg := n.hooks(); cfg.OnReady != nil || cfg.OnStopping != nil || cfg.OnReloading != nil || cfg.OnReloaded != nil {
		t.Fatal("a nil notifier set hooks")
	}
	n.ready() // a nil notifier does nothing
}

// A service manager that went away is logged, not fatal.
func TestServiceNotifierGone(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "gone.sock")
	t.Setenv(notifySocketEnv, socket)
	var logged strings.Builder
	log := zap.New(newLogger(&options{logLevel: "info", logFormat: "json"}, &logged).Core())
	n := newServiceNotifier(log)
	n.ready()
	if !strings.Contains(logged.String(), "notify service manager") {
		t.Fatalf("failure not logged: %q", logged.String())
	}
}
