//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rpcclient "github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/internal/waitfor"
)

// accessLines parses the access log at path, but for the client's hello
// on each connection; a missing file has none.
func accessLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		if l["method"] != "rpcd.hello" {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitAccessLines waits until the access log at path holds n lines.
func waitAccessLines(t *testing.T, path string, n int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	if !waitfor.Poll(10*time.Second, func() bool { lines = accessLines(t, path); return len(lines) >= n }) || len(lines) != n {
		t.Fatalf("%s: %d lines, want %d", path, len(lines), n)
	}
	return lines
}

// Workers write a line per answered request, with its fields and never
// its params, and reopen the file on USR1 after logrotate renamed it.
func TestAccessLogLinesAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	s := startServer(t, "-workers=2", "-access-log="+path)
	c, err := rpcclient.Dial(s.addr, rpcclient.Options{Conns: 4, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const secret = "s3cret-param"
	pings := callN(t, c, 20, "ping", `"`+secret+`"`)
	callN(t, c, 2, "nosuch", `"`+secret+`"`)
	lines := waitAccessLines(t, path, pings+2)
	codes := map[string]int{}
	for _, l := range lines {
		codes[l["method"].(string)+"/"+l["code"].(string)]++
		peer, _ := l["peer"].(string)
		in, _ := l["bytes_in"].(float64)
		out, _ := l["bytes_out"].(float64)
		if l["msg"] != "request" || l["level"] != "info" || !strings.HasPrefix(peer, "127.0.0.1:") ||
			l["ts"] == nil || l["duration"] == nil || in <= 0 || out <= 0 || l["slot"] == nil || l["pid"] == nil {
			t.Fatalf("access log line %v", l)
		}
	}
	if codes["ping/ok"] != pings || codes["nosuch/unknown_method"] != 2 {
		t.Fatalf("lines by method and code %v", codes)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(secret)) {
		t.Fatal("the access log holds a request's params")
	}

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	signal(t, s, syscall.SIGUSR1)
	// Every worker reopens on its own: ping until a line reaches the new
	// file, then once per worker more so that each has written there.
	answered := 0
	if !waitfor.Poll(10*time.Second, func() bool {
		answered += callN(t, c, 1, "ping", `"after"`)
		return len(accessLines(t, path)) > 0
	}) {
		t.Fatal("nothing written to the reopened access log")
	}
	waitfor.Until(t, 10*time.Second, "both files hold every answer", func() bool {
		return len(accessLines(t, path+".1"))+len(accessLines(t, path)) == pings+2+answered
	})
}
