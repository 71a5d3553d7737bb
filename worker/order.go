package worker

// answerQueue keeps a connection's answers in request order while some of
// its requests run on the pool or in a batch. Each slot is either pending (a
// pooled or batched answer still to come) or ready (answers that must wait
// for the pending slots before them). Slots are numbered by a sequence that
// survives compaction, so a pooled result finds its slot in constant time.
type answerQueue struct {
	slots   []answerSlot
	head    int    // index of the oldest live slot
	headSeq uint64 // sequence number of slots[head]
	pooled  int    // pending slots
	queued  int    // bytes held in ready slots
}

type answerSlot struct {
	data  []byte // encoded answer frames, owned by the slot; nil while pending
	ready bool
}

// maxPooledPerConn caps a connection's requests waiting on the pool; reading
// from it pauses at the cap.
const maxPooledPerConn = 1024

func (q *answerQueue) empty() bool { return q.head == len(q.slots) }

// nextSeq is the sequence number the next pushed slot will get.
func (q *answerQueue) nextSeq() uint64 { return q.headSeq + uint64(len(q.slots)-q.head) }

// pushPending adds a slot for a pooled answer.
func (q *answerQueue) pushPending() {
	q.compact()
	q.slots = append(q.slots, answerSlot{})
	q.pooled++
}

// readyTail returns the slot that answers made inline behind the last
// pending slot are appended to: the last slot if it is ready, else a new
// ready one. The caller adds what it appends to queued.
func (q *answerQueue) readyTail() *answerSlot {
	if n := len(q.slots); n > q.head && q.slots[n-1].ready {
		return &q.slots[n-1]
	}
	q.compact()
	q.slots = append(q.slots, answerSlot{ready: true})
	return &q.slots[len(q.slots)-1]
}

// fill stores the pooled answer for slot seq. It reports false for a sequence
// that has no pending slot.
func (q *answerQueue) fill(seq uint64, frame []byte) bool {
	if seq < q.headSeq || seq >= q.nextSeq() {
		return false
	}
	s := &q.slots[q.head+int(seq-q.headSeq)]
	if s.ready {
		return false
	}
	s.data, s.ready = frame, true
	q.pooled--
	q.queued += len(frame)
	return true
}

// popReady removes and returns the oldest slot if it is ready.
func (q *answerQueue) popReady() ([]byte, bool) {
	if q.empty() || !q.slots[q.head].ready {
		return nil, false
	}
	data := q.slots[q.head].data
	q.slots[q.head] = answerSlot{}
	q.head++
	q.headSeq++
	q.queued -= len(data)
	return data, true
}

// compact drops consumed slots once they make up most of the slice.
func (q *answerQueue) compact() {
	if q.head == 0 || q.head < len(q.slots)/2 {
		return
	}
	n := copy(q.slots, q.slots[q.head:])
	clear(q.slots[n:])
	q.slots = q.slots[:n]
	q.head = 0
}

// reset empties q for reuse by another connection.
func (q *answerQueue) reset() {
	clear(q.slots)
	*q = answerQueue{slots: q.slots[:0]}
}
