package main

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds from 1ns to a minute, to 3 significant digits.
const (
	histLowest  = 1
	histHighest = int64(time.Minute)
	histDigits  = 3
)

// stats are the figures one connection gathers; the run merges them at the end.
// A stats value is owned by one goroutine.
type stats struct {
	latency      *hdrhistogram.Histogram // measured requests only, nanoseconds
	requests     int64                   // measured answers
	errorAnswers int64
	errorCodes   map[string]int64
	mismatches   int64
	mismatchBody string // the first mismatching answer, for diagnosis
	connErrors   map[string]int64
	reconnects   int64
	lost         int64 // requests in flight on a connection that failed
}

func newStats() *stats {
	return &stats{
		latency:    hdrhistogram.New(histLowest, histHighest, histDigits),
		errorCodes: map[string]int64{},
		connErrors: map[string]int64{},
	}
}

// recordLatency adds one measured answer that took d.
func (s *stats) recordLatency(d time.Duration) {
	s.requests++
	v := int64(d)
	v = max(v, histLowest)
	v = min(v, histHighest)
	// The value is clamped into the histogram's range, so recording cannot fail.
	_ = s.latency.RecordValue(v)
}

// recordMismatch counts an answer that is not the expected one.
func (s *stats) recordMismatch(body []byte) {
	s.mismatches++
	if s.mismatchBody == "" {
		const keep = 200
		s.mismatchBody = string(body[:min(len(body), keep)])
	}
}

// recordConnError counts a connection failure by kind.
func (s *stats) recordConnError(err error) {
	s.connErrors[connErrorKind(err)]++
}

// merge adds o's figures to s.
func (s *stats) merge(o *stats) {
	s.latency.Merge(o.latency)
	s.requests += o.requests
	s.errorAnswers += o.errorAnswers
	s.mismatches += o.mismatches
	if s.mismatchBody == "" {
		s.mismatchBody = o.mismatchBody
	}
	s.reconnects += o.reconnects
	s.lost += o.lost
	addCounts(s.errorCodes, o.errorCodes)
	addCounts(s.connErrors, o.connErrors)
}

func addCounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// connErrorKind names the class of a connection failure for the report.
func connErrorKind(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, errBadFrame):
		return "bad_frame"
	default:
		return "other"
	}
}
