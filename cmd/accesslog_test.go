//go:build linux

package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/worker"
)

// accessLine is one access log line, parsed.
type accessLine struct {
	TS       string `json:"ts"`
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Peer     string `json:"peer"`
	Method   string `json:"method"`
	Code     string `json:"code"`
	Duration string `json:"duration"`
	BytesIn  *int   `json:"bytes_in"`
	BytesOut *int   `json:"bytes_out"`
	Slot     *int   `json:"slot"`
}

func readAccessLines(t *testing.T, path string) []accessLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []accessLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l accessLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func testRecord(method string, code int) *worker.AccessRecord {
	return &worker.AccessRecord{Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Peer: netip.MustParseAddrPort("127.0.0.1:40000"), Method: []byte(method), Code: code,
		Duration: 1500 * time.Microsecond, BytesIn: 30, BytesOut: 40}
}

func TestAccessLogLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	a, err := openAccessLog(path, 1, io.Discard, zap.NewNop(), zap.Int("slot", 2))
	if err != nil {
		t.Fatal(err)
	}
	a.Log(testRecord("ping", metrics.CodeOK))
	unparsed := testRecord("", metrics.CodeIndex("bad_request"))
	unparsed.Method, unparsed.Peer = nil, netip.AddrPort{}
	a.Log(unparsed)
	a.close()
	lines := readAccessLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	l := lines[0]
	ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
	if err != nil || !ts.Equal(testRecord("", 0).Time) {
		t.Errorf("ts %q: %v", l.TS, err)
	}
	if l.Level != "info" || l.Msg != "request" || l.Peer != "127.0.0.1:40000" || l.Method != "ping" ||
		l.Code != "ok" || l.Duration != "1.5ms" || l.BytesIn == nil || *l.BytesIn != 30 ||
		l.BytesOut == nil || *l.BytesOut != 40 || l.Slot == nil || *l.Slot != 2 {
		t.Errorf("line %+v", l)
	}
	if l := lines[1]; l.Method != "" || l.Peer != "" || l.Code != "bad_request" {
		t.Errorf("unparsed request's line %+v", l)
	}
}

func TestAccessLogSampleKeepsErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	a, err := openAccessLog(path, 3, io.Discard, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		a.Log(testRecord("ping", metrics.CodeOK))
		if i%4 == 0 {
			a.Log(testRecord("fail", metrics.CodeIndex("internal")))
		}
	}
	a.close()
	var ok, failed int
	for _, l := range readAccessLines(t, path) {
		switch l.Code {
		case "ok":
			ok++
		case "internal":
			failed++
		}
	}
	if ok != 3 || failed != 3 {
		t.Fatalf("kept %d of 9 ok (want 3) and %d of 3 errors", ok, failed)
	}
}

func TestAccessLogReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	a, err := openAccessLog(path, 1, io.Discard, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	a.Log(testRecord("before", metrics.CodeOK))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.reopen(); err != nil {
		t.Fatal(err)
	}
	a.Log(testRecord("after", metrics.CodeOK))
	a.close()
	for file, method := range map[string]string{path + ".1": "before", path: "after"} {
		if lines := readAccessLines(t, file); len(lines) != 1 || lines[0].Method != method {
			t.Errorf("%s: %+v, want one line of %s", file, lines, method)
		}
	}
}

func TestAccessLogFullQueueDrops(t *testing.T) {
	pr, pw := io.Pipe() // nobody reads: the writer blocks on its first flush
	a, err := openAccessLog("stderr", 1, pw, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var kept, dropped int
	start := time.Now()
	for range accessQueue + accessBuffer { // more than the queue and the buffer hold
		if a.Log(testRecord("ping", metrics.CodeOK)) {
			kept++
		} else {
			dropped++
		}
	}
	if elapsed := time.Since(start); dropped == 0 || kept < accessQueue {
		t.Fatalf("kept %d, dropped %d in %v", kept, dropped, elapsed)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drains until the pipe closes
	a.close()
	pw.Close()
}

func BenchmarkAccessLog(b *testing.B) {
	a, err := openAccessLog(filepath.Join(b.TempDir(), "access.log"), 1, io.Discard, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer a.close()
	rec := testRecord("ping", metrics.CodeOK)
	b.ReportAllocs()
	for b.Loop() {
		a.Log(rec)
	}
}

// writeRecorder keeps each Write call apart.
type writeRecorder struct{ writes [][]byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

// Every write holds whole lines, so that workers appending to one file
// never split each other's lines, however the lines fill the buffer.
func TestAccessLogWritesWholeLines(t *testing.T) {
	w := &writeRecorder{}
	a, err := openAccessLog("stderr", 1, w, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	const records = 3000 // several buffers' worth
	long := strings.Repeat("m", maxLoggedMethod)
	for i := range records {
		method := long[:1+i%maxLoggedMethod] // lines of every length
		if !a.Log(testRecord(method, metrics.CodeOK)) {
			t.Fatalf("record %d dropped", i)
		}
	}
	a.close()
	lines := 0
	for i, b := range w.writes {
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("write %d of %d ends mid-line: ...%q", i, len(w.writes), b[max(len(b)-40, 0):])
		}
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines != records || len(w.writes) < 2 {
		t.Fatalf("%d lines in %d writes, want %d lines over several writes", lines, len(w.writes), records)
	}
}
