package deploy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/procfs"
)

// TestServiceNotify runs the binary as systemd's Type=notify would: the
// master alone sends READY=1 with its pid once its workers are ready,
// RELOADING=1 and READY=1 around a reload or an upgrade, and STOPPING=1 on
// SIGTERM; the workers do not see NOTIFY_SOCKET.
func TestServiceNotify(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(rpcdBinary, "-listen=127.0.0.1:0", "-workers=2", "-log-format=json")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+socket)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	master := cmd.Process.Pid
	if got, want := readNotice(t, conn), fmt.Sprintf("READY=1\nMAINPID=%d", master); got != want {
		t.Fatalf("first notice %q, want %q", got, want)
	}
	workers := procfs.Children(master, procfs.Live)
	if len(workers) != 2 {
		t.Fatalf("master has children %v, want 2 workers", workers)
	}
	for _, pid := range workers {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(env, []byte("NOTIFY_SOCKET=")) {
			t.Errorf("worker %d inherited NOTIFY_SOCKET", pid)
		}
	}
	// A reload, then an upgrade, whose new image speaks for the service too:
	// RELOADING=1 with the monotonic time, READY=1 once the new generation
	// serves.
	reloading := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`)
	for _, step := range []struct {
		sig  syscall.Signal
		want []string
	}{
		{sig: syscall.SIGHUP, want: []string{"RELOADING", "READY=1"}},
		{sig: syscall.SIGUSR2, want: []string{fmt.Sprintf("READY=1\nMAINPID=%d", master), "RELOADING", "READY=1"}},
	} {
		if err := cmd.Process.Signal(step.sig); err != nil {
			t.Fatal(err)
		}
		for _, want := range step.want {
			if got := readNotice(t, conn); got != want && !(want == "RELOADING" && reloading.MatchString(got)) {
				t.Fatalf("notice after %v %q, want %q", step.sig, got, want)
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readNotice(t, conn); got != "STOPPING=1" {
		t.Fatalf("notice after SIGTERM %q, want STOPPING=1", got)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("rpcd exited: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("rpcd did not stop")
	}
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := conn.Read(make([]byte, 512)); n > 0 {
		t.Error("more notices after STOPPING=1")
	}
}

// readNotice returns the next datagram on conn.
func readNotice(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}
