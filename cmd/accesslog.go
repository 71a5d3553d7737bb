//go:build linux

package cmd

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/worker"
)

// The access log (-access-log): a JSON line per answered request, with the
// field names of rpcd's other logs. The worker's loop hands each record to
// a bounded queue and never waits on the disk: a writer goroutine encodes
// the records into a buffer it flushes every accessFlush, before a line
// that does not fit, and at close. Each write therefore holds whole lines,
// and O_APPEND keeps each write whole: the workers that share the file
// never interleave within a line. A record that finds the queue full is
// dropped and counted. Params are never logged.

const (
	accessQueue     = 8192 // records waiting for the writer
	accessBuffer    = 64 << 10
	accessFlush     = time.Second
	maxLoggedMethod = 128 // longer method names are cut to this many bytes
)

// accessEntry is a record as it waits in the queue: fixed size, so that
// queueing it does not allocate.
type accessEntry struct {
	at        time.Time
	peer      netip.AddrPort
	dur       time.Duration
	in, out   int
	code      uint8
	parsed    bool // the request had a method
	methodLen uint8
	method    [maxLoggedMethod]byte
}

// accessLog is a worker's access log. Log runs on the loop goroutine;
// reopen and close may be called from any goroutine, close once, after
// the loop has stopped.
type accessLog struct {
	queue   chan accessEntry
	reopens chan chan error
	done    chan struct{}
	sample  uint64 // keep one in sample successful answers
	seen    uint64 // successful answers seen; loop goroutine only
	path    string // "" when writing to stderr
	file    *os.File
	out     *bufio.Writer
	enc     zapcore.Encoder
	log     *zap.Logger // where the writer's own failures go
	failing bool        // a write failed; logged once until one succeeds
}

// openAccessLog opens path ("stderr" for stderr) and starts the writer.
// fields name the worker on each line.
func openAccessLog(path string, sample int, stderr io.Writer, log *zap.Logger, fields ...zap.Field) (*accessLog, error) {
	a := &accessLog{queue: make(chan accessEntry, accessQueue), reopens: make(chan chan error),
		done: make(chan struct{}), sample: uint64(max(sample, 1)), log: log}
	var w io.Writer = stderr
	if path != "stderr" {
		f, err := openAppend(path)
		if err != nil {
			return nil, fmt.Errorf("open access log: %w", err)
		}
		a.path, a.file, w = path, f, f
	}
	a.out = bufio.NewWriterSize(w, accessBuffer)
	a.enc = zapcore.NewJSONEncoder(logEncoderConfig())
	for _, f := range fields {
		f.AddTo(a.enc)
	}
	go a.run()
	return a, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// Log queues rec unless sampling leaves it out: every error is kept, and
// one in a.sample successful answers. It reports false when the queue was
// full and rec was dropped.
func (a *accessLog) Log(rec *worker.AccessRecord) bool {
	if rec.Code == metrics.CodeOK {
		a.seen++
		if (a.seen-1)%a.sample != 0 {
			return true
		}
	}
	e := accessEntry{at: rec.Time, peer: rec.Peer, dur: rec.Duration, in: rec.BytesIn, out: rec.BytesOut,
		code: uint8(rec.Code), parsed: rec.Method != nil}
	e.methodLen = uint8(copy(e.method[:], rec.Method))
	select {
	case a.queue <- e:
		return true
	default:
		return false
	}
}

// reopen has the writer flush and open the file anew, for logrotate.
func (a *accessLog) reopen() error {
	if a.path == "" {
		return nil
	}
	errc := make(chan error, 1)
	select {
	case a.reopens <- errc:
		return <-errc
	case <-a.done:
		return nil
	}
}

// close writes what is queued, flushes and closes the file.
func (a *accessLog) close() {
	close(a.queue)
	<-a.done
}

// run is the writer goroutine.
func (a *accessLog) run() {
	defer close(a.done)
	tick := time.NewTicker(accessFlush)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-a.queue:
			if !ok {
				a.flush()
				if a.file != nil {
					a.file.Close()
				}
				return
			}
			a.write(&e)
		case <-tick.C:
			a.flush()
		case errc := <-a.reopens:
			errc <- a.reopenFile()
		}
	}
}

// write encodes e as one line.
func (a *accessLog) write(e *accessEntry) {
	method := "" // a request that did not parse has none
	if e.parsed {
		method = string(e.method[:e.methodLen])
	}
	peer := ""
	if e.peer.IsValid() {
		peer = e.peer.String()
	}
	buf, err := a.enc.EncodeEntry(zapcore.Entry{Level: zapcore.InfoLevel, Time: e.at, Message: "request"},
		[]zap.Field{zap.String("peer", peer), zap.String("method", method),
			zap.String("code", metrics.Codes[e.code]), zap.Duration("duration", e.dur),
			zap.Int("bytes_in", e.in), zap.Int("bytes_out", e.out)})
	if err != nil {
		a.failed(err)
		return
	}
	line := buf.Bytes()
	if len(line) > a.out.Available() && a.out.Buffered() > 0 {
		// Flush first: filling the buffer with part of the line would
		// send the line in two writes, which another worker's could split.
		if err := a.out.Flush(); err != nil {
			buf.Free()
			a.failed(err)
			return
		}
	}
	_, err = a.out.Write(line) // into the buffer, or in one write when larger than it
	buf.Free()
	a.failed(err)
}

func (a *accessLog) flush() { a.failed(a.out.Flush()) }

// failed logs the first of a run of write errors.
func (a *accessLog) failed(err error) {
	switch {
	case err == nil:
		a.failing = false
	case !a.failing:
		a.failing = true
		a.log.Warn("write access log failed", zap.Error(err))
	}
}

// reopenFile writes what was queued before the reopen to the old file,
// then swaps in a new one at a.path.
func (a *accessLog) reopenFile() error {
	for range len(a.queue) {
		e, ok := <-a.queue
		if !ok {
			break
		}
		a.write(&e)
	}
	a.flush()
	f, err := openAppend(a.path)
	if err != nil {
		return fmt.Errorf("reopen access log: %w", err)
	}
	a.file.Close()
	a.file = f
	a.out.Reset(f)
	a.failing = false
	return nil
}
