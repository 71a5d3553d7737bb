package metrics

import (
	"errors"
	"sync/atomic"
)

// Recorder is a worker's writer of its block. It counts in its own memory
// and publishes to the block once per loop turn. Every method but
// Published belongs to one goroutine, the worker's loop; a nil *Recorder
// records nothing, so a worker without metrics calls it all the same.
type Recorder struct {
	region *Region
	block  []uint64 // the shared block
	local  []uint64 // the counts, same layout
	rows   int
	dirty  []bool // rows changed since the last Publish
	listed []int  // indexes of dirty rows
	scal   bool   // scalars changed since the last Publish
}

// Recorder returns the writer of block b, which the caller's worker holds.
func (r *Region) Recorder(b int) (*Recorder, error) {
	if b < 0 || b >= r.blocks {
		return nil, errors.New("record metrics: no such block")
	}
	rows := len(r.methods) + 1
	return &Recorder{region: r, block: r.block(b), local: make([]uint64, r.setWords), rows: rows,
		dirty: make([]bool, rows)}, nil
}

// Row returns the row counting method: its index in the region's table,
// or the last row for any other name. It does not allocate.
func (rc *Recorder) Row(method []byte) int {
	if rc == nil {
		return 0
	}
	if i, ok := rc.region.index[string(method)]; ok {
		return i
	}
	return rc.rows - 1
}

// Request counts an answer with code (an index into Codes) to a request
// for row that took nanos.
func (rc *Recorder) Request(row, code int, nanos int64) {
	if rc == nil {
		return
	}
	base := setRows + row*rowWords
	rc.local[base+rowCodes+code]++
	k := len(bucketNanos)
	for i, b := range bucketNanos {
		if nanos <= b {
			k = i
			break
		}
	}
	rc.local[base+rowBuckets+k]++
	rc.local[base+rowSum] += uint64(max(nanos, 0))
	if !rc.dirty[row] {
		rc.dirty[row] = true
		rc.listed = append(rc.listed, row)
	}
}

// Add adds n to counter i (Accepted, Closed(reason), BytesRead, BytesWritten).
func (rc *Recorder) Add(i int, n uint64) {
	if rc == nil {
		return
	}
	rc.local[setRows+rc.rows*rowWords+i] += n
	rc.scal = true
}

// Set sets gauge i (OpenConns, InFlight, QueueDepth) to v.
func (rc *Recorder) Set(i int, v int64) {
	if rc == nil {
		return
	}
	rc.local[setRows+rc.rows*rowWords+i] = uint64(max(v, 0))
	rc.scal = true
}

// Publish copies what changed since the last Publish to the shared block.
func (rc *Recorder) Publish() {
	if rc == nil {
		return
	}
	for _, row := range rc.listed {
		base := setRows + row*rowWords
		rc.store(base, base+rowWords)
		rc.dirty[row] = false
	}
	rc.listed = rc.listed[:0]
	if rc.scal {
		base := setRows + rc.rows*rowWords
		rc.store(base, base+numScalars)
		rc.scal = false
	}
}

func (rc *Recorder) store(from, to int) {
	for i := from; i < to; i++ {
		if v := rc.local[i]; v != atomic.LoadUint64(&rc.block[i]) {
			atomic.StoreUint64(&rc.block[i], v)
		}
	}
}
