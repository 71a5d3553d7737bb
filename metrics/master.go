package metrics

import "sync/atomic"

// The master's side: it owns the blocks' assignment, the slot totals and
// the header's counters. These run on the master's loop goroutine, except
// Snapshot, which any goroutine may call.

// FreeBlock returns a block no worker holds, or false if all are taken.
func (r *Region) FreeBlock() (int, bool) {
	for b := range r.blocks {
		if atomic.LoadUint64(&r.block(b)[setOwner]) == 0 {
			return b, true
		}
	}
	return 0, false
}

// Claim records that the worker pid of slot holds block b, which it
// starts on zeroed; pid 0 reserves b for a worker about to start, which a
// second Claim with its pid completes. A slot beyond Slots cannot hold a
// block: Claim reports false and b stays free.
func (r *Region) Claim(b, slot, pid int) bool {
	if b < 0 || b >= r.blocks || slot < 0 || slot >= r.slots {
		return false
	}
	set := r.block(b)
	atomic.StoreUint64(&set[setPid], uint64(pid))
	atomic.StoreUint64(&set[setOwner], uint64(slot)+1)
	return true
}

// Release frees block b, reserved by Claim for a worker that did not start.
func (r *Region) Release(b int) {
	if b >= 0 && b < r.blocks {
		set := r.block(b)
		atomic.StoreUint64(&set[setOwner], 0)
		atomic.StoreUint64(&set[setPid], 0)
	}
}

// Fold adds the counts of the block held by the worker pid, which has
// exited, to its slot's totals, then zeroes and frees the block. It returns
// the block's slot, and whether pid held a block. A Snapshot sees the
// counts in the block or in the totals, never in both or neither.
func (r *Region) Fold(pid int) (slot int, ok bool) {
	b, ok := r.blockOf(pid)
	if !ok {
		return 0, false
	}
	r.fold.Lock()
	defer r.fold.Unlock()
	set := r.block(b)
	slot = int(atomic.LoadUint64(&set[setOwner])) - 1
	total := r.total(slot)
	rows := len(r.methods) + 1
	for i := setRows; i < len(set); i++ {
		v := atomic.LoadUint64(&set[i])
		if s := i - setRows - rows*rowWords; s < 0 || !isGauge(s) {
			atomic.AddUint64(&total[i], v)
		}
		atomic.StoreUint64(&set[i], 0)
	}
	atomic.StoreUint64(&set[setPid], 0)
	atomic.StoreUint64(&set[setOwner], 0)
	return slot, true
}

func (r *Region) blockOf(pid int) (int, bool) {
	for b := range r.blocks {
		set := r.block(b)
		if atomic.LoadUint64(&set[setOwner]) != 0 && atomic.LoadUint64(&set[setPid]) == uint64(pid) {
			return b, true
		}
	}
	return 0, false
}

// Count adds one to scalar i (Starts, Exits, MissedBeats) of slot's
// totals; a slot beyond Slots is not counted.
func (r *Region) Count(slot, i int) {
	if slot >= 0 && slot < r.slots {
		atomic.AddUint64(scalar(r.total(slot), len(r.methods)+1, i), 1)
	}
}

// CountReload and CountUpgrade count a reload's or an upgrade's outcome.
func (r *Region) CountReload(ok bool)  { r.countOutcome(hReloads, ok) }
func (r *Region) CountUpgrade(ok bool) { r.countOutcome(hUpgrades, ok) }

func (r *Region) countOutcome(at int, ok bool) {
	if !ok {
		at++
	}
	atomic.AddUint64(&r.words[at], 1)
}
