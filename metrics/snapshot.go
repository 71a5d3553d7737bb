package metrics

import "sync/atomic"

// Snapshot is the region's counts at one moment, by slot.
type Snapshot struct {
	Methods  []string // row i is Methods[i]; the last row counts other names
	Slots    []SlotStats
	Reloads  Outcomes
	Upgrades Outcomes
}

// Outcomes count what succeeded and what failed.
type Outcomes struct{ Succeeded, Failed uint64 }

// SlotStats are a slot's totals plus the blocks of its running workers.
type SlotStats struct {
	Slot    int
	Workers int // running workers holding a block
	Rows    []Row
	Scalars [numScalars]uint64 // by Accepted, Closed(r), BytesRead ... QueueDepth
}

// Row is one method's counts.
type Row struct {
	Codes    [len(Codes)]uint64
	Buckets  [len(Buckets) + 1]uint64 // not cumulative; the last is above every bound
	SumNanos uint64
}

// Requests is the row's count over every code.
func (r *Row) Requests() uint64 {
	var n uint64
	for _, c := range r.Codes {
		n += c
	}
	return n
}

// Snapshot reads every slot that has counted anything or has a worker.
// Safe from any goroutine.
func (r *Region) Snapshot() Snapshot {
	r.fold.Lock()
	defer r.fold.Unlock()
	rows := len(r.methods) + 1
	snap := Snapshot{Methods: r.methods,
		Reloads:  Outcomes{atomic.LoadUint64(&r.words[hReloads]), atomic.LoadUint64(&r.words[hReloads+1])},
		Upgrades: Outcomes{atomic.LoadUint64(&r.words[hUpgrades]), atomic.LoadUint64(&r.words[hUpgrades+1])},
	}
	slots := make([]SlotStats, r.slots)
	used := make([]bool, r.slots)
	for s := range r.slots {
		slots[s].Slot, slots[s].Rows = s, make([]Row, rows)
		used[s] = addSet(&slots[s], r.total(s), rows)
	}
	for b := range r.blocks {
		set := r.block(b)
		owner := int(atomic.LoadUint64(&set[setOwner]))
		if owner == 0 || owner > r.slots {
			continue
		}
		addSet(&slots[owner-1], set, rows)
		slots[owner-1].Workers++
		used[owner-1] = true
	}
	for s := range slots {
		if used[s] {
			snap.Slots = append(snap.Slots, slots[s])
		}
	}
	return snap
}

// addSet adds set's counts to st and reports whether any was non-zero.
func addSet(st *SlotStats, set []uint64, rows int) bool {
	var any uint64
	for i := range rows {
		row := set[setRows+i*rowWords : setRows+(i+1)*rowWords]
		out := &st.Rows[i]
		for c := range out.Codes {
			v := atomic.LoadUint64(&row[rowCodes+c])
			out.Codes[c] += v
			any |= v
		}
		for k := range out.Buckets {
			out.Buckets[k] += atomic.LoadUint64(&row[rowBuckets+k])
		}
		out.SumNanos += atomic.LoadUint64(&row[rowSum])
	}
	for i := range st.Scalars {
		v := atomic.LoadUint64(scalar(set, rows, i))
		st.Scalars[i] += v
		any |= v
	}
	return any != 0
}
