package worker

import "math/bits"

// Input buffers of at least minSpare bytes come in size classes a quarter of
// an octave apart: 32, 40, 48, 56, 64, 80 KiB and so on up to maxSpare. A
// buffer a conn no longer needs, outgrown by its half-received frame or left
// by a completed frame or a closed conn, is kept in spareBuffers for the next
// conn that needs one of its class or somewhat smaller, instead of becoming
// garbage on top of the live buffers. Smaller buffers are allocated to size and left to the
// garbage collector.
const (
	minSpareShift = 15
	minSpare      = 1 << minSpareShift // smallest class: 32 KiB
	spareClasses  = 4 * (31 - minSpareShift)
	maxSpare      = 7 << (30 - 2) // largest class: 1.75 GiB

	// A spare up to three octaves larger than asked for is taken rather than
	// a new buffer allocated: it is counted at its size against the budget,
	// and the frame may grow into it.
	spareReach = 12
)

// spareBuffers holds freed input buffers by size class. The worker bounds
// the bytes it holds (see Worker.recycle) and counts them against the memory
// budget.
type spareBuffers struct {
	free  [spareClasses][][]byte
	bytes int // capacity of the buffers held
}

// classSize is the capacity of the buffers of class i.
func classSize(i int) int {
	return (4 + i&3) << (i>>2 + minSpareShift - 2)
}

// classBelow returns the largest class whose size is at most n, n >= minSpare.
func classBelow(n int) int {
	e := bits.Len(uint(n)) - 3 // n>>e has three bits: 4 to 7
	return (e-minSpareShift+2)*4 + n>>e - 4
}

// get returns an empty buffer with room for need bytes. Where a class fits
// between need and want, that is the largest class not above want: a spare
// one of that class or up to spareReach classes above, else a new one.
// Otherwise it allocates want.
func (s *spareBuffers) get(need, want int) []byte {
	if want < minSpare || want > maxSpare {
		return make([]byte, 0, want)
	}
	i := classBelow(want)
	size := classSize(i)
	if size < need {
		return make([]byte, 0, want)
	}
	for j := i; j < min(i+spareReach+1, spareClasses); j++ {
		if k := len(s.free[j]); k > 0 {
			b := s.free[j][k-1]
			s.free[j][k-1] = nil
			s.free[j] = s.free[j][:k-1]
			s.bytes -= cap(b)
			return b
		}
	}
	return make([]byte, 0, size)
}

// put keeps b for reuse, unless it is smaller than the smallest class or
// larger than the largest; it reports whether b was kept.
func (s *spareBuffers) put(b []byte) bool {
	n := cap(b)
	if n < minSpare || n > maxSpare {
		return false
	}
	i := classBelow(n)
	s.free[i] = append(s.free[i], b[:0])
	s.bytes += n
	return true
}

// trim lets the garbage collector have spare buffers, the largest first,
// until at most keep bytes are held.
func (s *spareBuffers) trim(keep int) {
	for i := spareClasses - 1; i >= 0 && s.bytes > keep; i-- {
		for k := len(s.free[i]); k > 0 && s.bytes > keep; k-- {
			s.bytes -= cap(s.free[i][k-1])
			s.free[i][k-1] = nil
			s.free[i] = s.free[i][:k-1]
		}
		if len(s.free[i]) == 0 {
			s.free[i] = nil
		}
	}
}
