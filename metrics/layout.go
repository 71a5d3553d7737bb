package metrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Answer codes, the "code" label of a request: ok, the codes of package
// protocol, and other for a handler's own.
var Codes = [...]string{"ok", "bad_request", "unknown_method", "internal", "overloaded",
	"timeout", "unavailable", "bad_frame", "frame_too_large", "other"}

// Indexes into Codes that the worker and the exporter name.
const (
	CodeOK         = 0
	CodeOverloaded = 4
	CodeTimeout    = 5
	CodeOther      = len(Codes) - 1
)

// CodeIndex returns code's index in Codes, CodeOther for a code of its own.
func CodeIndex(code string) int {
	for i, c := range Codes {
		if c == code {
			return i
		}
	}
	return CodeOther
}

// Buckets are the upper bounds, in seconds, of the request duration
// histogram; one more bucket counts what is above the last. Fixed, so that
// the histograms of every worker add up.
var Buckets = [...]float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// bucketNanos are Buckets in nanoseconds.
var bucketNanos = func() (ns [len(Buckets)]int64) {
	for i, b := range Buckets {
		ns[i] = int64(b * 1e9)
	}
	return ns
}()

// CloseReasons are why a connection closed, the "reason" label.
var CloseReasons = [...]string{"client", "idle", "read_timeout", "write_timeout", "budget",
	"frame_error", "drain", "error"}

// Indexes into CloseReasons.
const (
	CloseClient = iota
	CloseIdle
	CloseReadTimeout
	CloseWriteTimeout
	CloseBudget
	CloseFrameError
	CloseDrain
	CloseError
)

// StartCauses are why the master started a worker: a slot's worker (at
// start, or after the previous one exited), a recycled worker's
// replacement, a new generation's worker.
var StartCauses = [...]string{"slot", "recycle", "rollout"}

// ExitCauses are how a worker ended: it exited 0, it failed on its own
// (a non-zero status or a signal the master did not send), or the master
// killed it (no heartbeat, not ready in time, not drained in time).
var ExitCauses = [...]string{"clean", "crash", "killed"}

// The scalar counters of a set, after its rows.
const (
	Accepted     = iota // connections accepted
	closedFirst         // CloseReasons, one each
	BytesRead    = closedFirst + len(CloseReasons)
	BytesWritten = BytesRead + 1
	startsFirst  = BytesWritten + 1 // StartCauses, in slot totals only
	exitsFirst   = startsFirst + len(StartCauses)
	MissedBeats  = exitsFirst + len(ExitCauses) // heartbeat timeouts, in slot totals only
	// AccessDropped counts access log records dropped because the log's
	// buffer was full.
	AccessDropped = MissedBeats + 1
	// PoolOverloaded and PoolTimeouts count the blocking and batch calls
	// the worker itself answered overloaded (the queue was full) or
	// timeout (past the handler timeout); a handler's own answers with
	// these codes are not among them.
	PoolOverloaded = AccessDropped + 1
	PoolTimeouts   = PoolOverloaded + 1
	// Gauges: a worker's current values, never folded.
	OpenConns  = PoolTimeouts + 1 // connections open
	InFlight   = OpenConns + 1    // blocking and batch calls taken and not answered yet
	QueueDepth = InFlight + 1     // blocking calls queued for the pool
	numScalars = QueueDepth + 1
)

// Closed is the scalar index counting connections closed for reason.
func Closed(reason int) int { return closedFirst + reason }

// Starts is the scalar index counting workers started for cause.
func Starts(cause int) int { return startsFirst + cause }

// Exits is the scalar index counting workers that ended by cause.
func Exits(cause int) int { return exitsFirst + cause }

// isGauge reports whether scalar i is a gauge.
func isGauge(i int) bool { return i >= OpenConns }

// A row is one method's counts: one per code, the histogram's buckets and
// the sum of the durations in nanoseconds.
const (
	rowCodes   = 0
	rowBuckets = rowCodes + len(Codes)
	rowSum     = rowBuckets + len(Buckets) + 1
	rowWords   = rowSum + 1
)

// Header words.
const (
	hMagic = iota
	hVersion
	hLayout // layoutPrint of the image that formatted the region
	hMethods
	hSlots
	hBlocks
	hSetWords
	hNamesLen
	hReloads   // 2 words: succeeded, failed
	hUpgrades  = hReloads + 2
	headerSize = hUpgrades + 2
)

const (
	magic   = 0x72706364_6d657472 // "rpcdmetr"
	version = 3
	// setOwner, setPid: a block's slot+1 (0 while free) and its worker's pid.
	setOwner = 0
	setPid   = 1
	setRows  = 2
	// MaxMethods bounds the method table.
	MaxMethods = 1024
)

// layoutPrint sums up what the header does not spell out but the sets'
// layout depends on: the numbers of codes, buckets and scalars, and the
// version. An image whose print differs reads another layout.
const layoutPrint = version<<48 | uint64(len(Codes))<<32 | uint64(len(Buckets)+1)<<16 | uint64(numScalars)

// layout is the geometry a header describes.
type layout struct {
	methods        []string
	slots, blocks  int
	setWords       int // a multiple of 8: sets never share a cache line
	setsAt, length int // in words
}

func newLayout(methods []string, slots, blocks int) layout {
	l := layout{methods: methods, slots: slots, blocks: blocks}
	rows := len(methods) + 1
	l.setWords = roundUp(setRows+rows*rowWords+numScalars, 8)
	names := len(strings.Join(methods, "\n"))
	l.setsAt = roundUp(headerSize+(names+7)/8, 8)
	l.length = l.setsAt + (slots+blocks)*l.setWords
	return l
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// Size is the bytes a region for methods, slots and blocks takes.
func Size(methods []string, slots, blocks int) int {
	return newLayout(methods, slots, blocks).length * 8
}

// Region is a mapped region of counters. Its Snapshot and Fold may be
// called from any goroutine of the master; its Recorders belong to one
// goroutine each.
type Region struct {
	layout
	words []uint64
	mem   []byte
	fd    int            // the memfd, -1 for plain memory
	fold  sync.Mutex     // orders Fold against Snapshot
	index map[string]int // method name to row
}

// Format lays out a new region for methods over mem, which must be zeroed
// and at least Size bytes, 8-byte aligned.
func Format(mem []byte, methods []string, slots, blocks int) (*Region, error) {
	if len(methods) > MaxMethods {
		return nil, fmt.Errorf("format metrics: %d methods, at most %d", len(methods), MaxMethods)
	}
	for _, m := range methods {
		if m == "" || strings.Contains(m, "\n") {
			return nil, fmt.Errorf("format metrics: method name %q", m)
		}
	}
	l := newLayout(methods, slots, blocks)
	if len(mem) < l.length*8 {
		return nil, fmt.Errorf("format metrics: %d bytes, need %d", len(mem), l.length*8)
	}
	w := asWords(mem)
	names := strings.Join(methods, "\n")
	copy(mem[headerSize*8:], names)
	for i, v := range [...]int{hMethods: len(methods), hSlots: slots, hBlocks: blocks,
		hSetWords: l.setWords, hNamesLen: len(names)} {
		if i >= hMethods {
			atomic.StoreUint64(&w[i], uint64(v))
		}
	}
	atomic.StoreUint64(&w[hVersion], version)
	atomic.StoreUint64(&w[hLayout], layoutPrint)
	atomic.StoreUint64(&w[hMagic], magic)
	return newRegion(l, mem, -1), nil
}

// Load reads the layout of a region Format wrote into mem.
func Load(mem []byte) (*Region, error) {
	if len(mem) < headerSize*8 {
		return nil, errors.New("load metrics: region too small")
	}
	w := asWords(mem)
	if atomic.LoadUint64(&w[hMagic]) != magic || atomic.LoadUint64(&w[hVersion]) != version {
		return nil, errors.New("load metrics: not an rpcd metrics region of this version")
	}
	if got := atomic.LoadUint64(&w[hLayout]); got != layoutPrint {
		return nil, fmt.Errorf("load metrics: region laid out as %#x, this image as %#x", got, uint64(layoutPrint))
	}
	n := int(w[hNamesLen])
	if headerSize*8+n > len(mem) || w[hMethods] > MaxMethods {
		return nil, errors.New("load metrics: corrupt header")
	}
	var methods []string
	if n > 0 {
		methods = strings.Split(string(mem[headerSize*8:headerSize*8+n]), "\n")
	}
	l := newLayout(methods, int(w[hSlots]), int(w[hBlocks]))
	if len(methods) != int(w[hMethods]) || l.setWords != int(w[hSetWords]) || len(mem) < l.length*8 {
		return nil, errors.New("load metrics: corrupt header")
	}
	return newRegion(l, mem, -1), nil
}

func newRegion(l layout, mem []byte, fd int) *Region {
	idx := make(map[string]int, len(l.methods))
	for i, m := range l.methods {
		idx[m] = i
	}
	return &Region{layout: l, words: asWords(mem)[:l.length], mem: mem, fd: fd, index: idx}
}

func asWords(mem []byte) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(mem))), len(mem)/8)
}

// Methods returns the method table: row i counts Methods()[i], and row
// len(Methods()) every other name.
func (r *Region) Methods() []string { return r.methods }

// Slots and Blocks return the number of slot totals and worker blocks.
func (r *Region) Slots() int  { return r.slots }
func (r *Region) Blocks() int { return r.blocks }

// set returns set i: slot totals first, then blocks.
func (r *Region) set(i int) []uint64 {
	at := r.setsAt + i*r.setWords
	return r.words[at : at+r.setWords : at+r.setWords]
}

func (r *Region) block(b int) []uint64 { return r.set(r.slots + b) }
func (r *Region) total(s int) []uint64 { return r.set(s) }

func scalar(set []uint64, rows, i int) *uint64 { return &set[setRows+rows*rowWords+i] }
