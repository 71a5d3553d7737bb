package cmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
			defer n.close()
			if v, set := os.LookupEnv(notifySocketEnv); set {
				t.Fatalf("%s=%q is still set; workers would inherit it", notifySocketEnv, v)
			}
			n.ready()
			want := fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())
			if got := readNotice(t, conn); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// A stop signal is reported as STOPPING=1. The signal is caught here as the
// master would catch it, so the test process lives on.
func TestServiceNotifierStopping(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify.sock")
	conn := listenNotify(t, socket)
	t.Setenv(notifySocketEnv, socket)
	n := newServiceNotifier(zap.NewNop())
	defer n.close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	if got := readNotice(t, conn); got != "STOPPING=1" {
		t.Fatalf("got %q, want STOPPING=1", got)
	}
}

func TestServiceNotifierUnset(t *testing.T) {
	t.Setenv(notifySocketEnv, "")
	n := newServiceNotifier(zap.NewNop())
	if n != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET")
	}
	n.ready() // a nil notifier does nothing
	n.close()
}

// A service manager that went away is logged, not fatal.
func TestServiceNotifierGone(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "gone.sock")
	t.Setenv(notifySocketEnv, socket)
	var logged strings.Builder
	log := zap.New(newLogger(&options{logLevel: "info", logFormat: "json"}, &logged).Core())
	n := newServiceNotifier(log)
	defer n.close()
	n.ready()
	if !strings.Contains(logged.String(), "notify service manager") {
		t.Fatalf("failure not logged: %q", logged.String())
	}
}
