package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/protocol"
)

// TestMain runs the journal's main instead of the tests in a process the
// test started, so the test starts the real program.
func TestMain(m *testing.M) { rpcdtest.Main(m, main) }

// startJournal runs the program on 127.0.0.1:0 appending to path, and
// returns its address once its master logs that it is ready.
func startJournal(t *testing.T, path string) string {
	t.Helper()
	cmd := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0", "-workers=2", "-log-format=json")
	cmd.Env = append(cmd.Environ(), "JOURNAL_FILE="+path)
	return rpcdtest.Serve(t, cmd)
}

// Every append answered "appended" is a line of the file, exactly once; a
// refused one is not.
func TestJournalAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	c, err := client.Dial(startJournal(t, path), client.Options{Conns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const appenders, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, appenders*each)
	for a := range appenders {
		wg.Go(func() {
			for i := range each {
				out, result, err := c.Call(ctx, "journal.append", fmt.Appendf(nil, `{"a":%d,"i":%d}`, a, i))
				if err == nil && (out != "appended" || len(result) == 0 || result[0] < '1' || result[0] > '9') {
					err = fmt.Errorf("answered %s %s", out, result)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, _, err = c.Call(ctx, "journal.append", []byte("{\n}"))
	if pe := (*protocol.Error)(nil); !errors.As(err, &pe) || pe.Code != protocol.CodeBadRequest {
		t.Fatalf("params with a line break: %v, want bad_request", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var want []string
	for a := range appenders {
		for i := range each {
			want = append(want, fmt.Sprintf(`{"a":%d,"i":%d}`, a, i))
		}
	}
	slices.Sort(lines)
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Fatalf("journal holds %d lines, want each of the %d appends once:\n%s", len(lines), len(want), data)
	}
}
