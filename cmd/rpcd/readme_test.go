//go:build linux

package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/tcptest"
)

// readmePython returns the README's Python examples.
func readmePython(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatal("no Python example in README.md")
	}
	return blocks
}

// trickleProxy relays one connection at a time to addr on 127.0.0.1 and
// passes the server's bytes on in chunks of 1 KiB a millisecond apart, as a
// slow network would, so that a client that takes one recv for a whole
// frame gets a part of it. It returns its port.
func trickleProxy(t *testing.T, addr string) string {
	t.Helper()
	l := tcptest.Serve(t, func(c net.Conn) { relay(c, addr) })
	_, port, _ := net.SplitHostPort(l.String())
	return port
}

func relay(c net.Conn, addr string) {
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer s.Close()
	go io.Copy(s, c)
	buf := make([]byte, 1024)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			time.Sleep(time.Millisecond) // the trickle, not a wait for anything
		}
		if err != nil {
			return
		}
	}
}

// TestReadmePython runs each Python example of the README against a real
// rpcd, through a proxy that splits its answers, and wants each printed line
// to be what the comment beside its print says.
func TestReadmePython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found; install it (apt-get install python3) to run the README's examples")
	}
	s := startServer(t, "-workers=1")
	port := trickleProxy(t, s.addr)
	// The examples of the Python client import it from the tree.
	clientSrc, err := filepath.Abs("../../clients/python/src")
	if err != nil {
		t.Fatal(err)
	}
	for i, block := range readmePython(t) {
		// Raw sockets name the address as a tuple, the client as a string.
		const tuple, str = `("127.0.0.1", 8080)`, `"127.0.0.1:8080"`
		if !strings.Contains(block, tuple) && !strings.Contains(block, str) {
			t.Fatalf("example %d connects to neither %s nor %s:\n%s", i, tuple, str, block)
		}
		script := filepath.Join(t.TempDir(), "example.py")
		code := strings.ReplaceAll(block, tuple, `("127.0.0.1", `+port+`)`)
		code = strings.ReplaceAll(code, str, `"127.0.0.1:`+port+`"`)
		if err := os.WriteFile(script, []byte(code), 0o600); err != nil {
			t.Fatal(err)
		}
		run := exec.Command(python, script)
		run.Env = append(os.Environ(), "PYTHONPATH="+clientSrc)
		out, err := run.CombinedOutput()
		if err != nil {
			t.Fatalf("example %d: %v\n%s", i, err, out)
		}
		want := printedComments(block)
		if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
			t.Errorf("example %d printed\n%s\nwant\n%s", i, got, strings.Join(want, "\n"))
		}
	}
}

// printedComments are the comments beside the print calls of a Python
// example: what each is to print.
func printedComments(block string) []string {
	var want []string
	for _, line := range strings.Split(block, "\n") {
		if code, comment, ok := strings.Cut(line, "# "); ok && strings.HasPrefix(strings.TrimSpace(code), "print(") {
			want = append(want, strings.TrimSpace(comment))
		}
	}
	return want
}
