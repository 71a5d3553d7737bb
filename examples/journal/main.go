// Command journal is rpcd with a Batch method: journal.append writes its
// params as one line of the file named by $JOURNAL_FILE, and answers once the
// line is on disk. The calls a worker reads in one loop turn share one write
// and one fdatasync (group commit), so a thousand appenders cost about as
// many syncs as the loop has turns, not one each.
//
//	JOURNAL_FILE=/tmp/journal go run ./examples/journal -workers=2
//
// {"in": "journal.append", "params": {"user": "ada"}} is answered
// {"out": "appended", "result": N}, N the number of lines its write carried.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/handlers"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

func main() {
	reg := rpc.NewRegistry()
	handlers.Register(reg)
	j := &journal{path: os.Getenv("JOURNAL_FILE")}
	reg.RegisterBatch("journal.append", j.append)
	cmd.Main(reg)
}

// journal appends lines to one file, opened on first use in each worker.
type journal struct {
	path string
	once sync.Once
	f    *os.File
	err  error
}

func (j *journal) file() (*os.File, error) {
	j.once.Do(func() {
		if j.path == "" {
			j.err = protocol.Errorf(protocol.CodeUnavailable, "no journal: set JOURNAL_FILE")
			return
		}
		j.f, j.err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	})
	return j.f, j.err
}

// append writes every call's params as a line, with one write and one sync
// for the batch. Params that hold a line break are refused.
func (j *journal) append(_ context.Context, calls []rpc.Call) {
	f, err := j.file()
	var buf bytes.Buffer
	lines := 0
	for i := range calls {
		c := &calls[i]
		switch {
		case err != nil:
			c.Err = err
		case bytes.ContainsAny(c.Params, "\r\n"):
			c.Err = protocol.Errorf(protocol.CodeBadRequest, "params must fit on one line")
		default:
			buf.Write(c.Params)
			buf.WriteByte('\n')
			lines++
		}
	}
	if lines == 0 {
		return
	}
	if _, err = f.Write(buf.Bytes()); err == nil {
		err = f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("append to the journal: %w", err)
	}
	n := strconv.AppendInt(nil, int64(lines), 10)
	for i := range calls {
		c := &calls[i]
		switch {
		case c.Err != nil:
		case err != nil:
			c.Err = err
		default:
			c.Reply.SetOut("appended")
			c.Reply.SetRaw(n)
		}
	}
}
