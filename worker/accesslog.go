package worker

import (
	"net/netip"
	"time"
)

// AccessRecord is one answered request, as Config.AccessLog receives it.
// It never holds the request's params.
type AccessRecord struct {
	Time     time.Time      // when the answer was made
	Peer     netip.AddrPort // the client's address; zero when not an IP peer
	Method   []byte         // nil when the request did not parse; valid during Log only
	Code     int            // the answer's index in metrics.Codes
	Duration time.Duration  // from reading the request to answering it
	BytesIn  int            // the request frame's size, header included
	BytesOut int            // the answer frame's size, header included
}

// AccessLog receives a record per answered request (Config.AccessLog).
type AccessLog interface {
	// Log runs on the loop goroutine and must neither block nor keep rec
	// or its Method past its return. It reports false when it dropped
	// the record for want of room, which the worker counts
	// (metrics.AccessDropped).
	Log(rec *AccessRecord) bool
}
