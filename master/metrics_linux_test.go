package master

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
)

// metricsMaster is a master, not running, with a region of slots and
// blocks over plain memory.
func metricsMaster(t *testing.T, slots, blocks int) (*Master, *metrics.Region) {
	t.Helper()
	m, err := New(fakeConfig(1, behaveWell, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	methods := []string{"ping"}
	r, err := metrics.Format(make([]byte, metrics.Size(methods, slots, blocks)), methods, slots, blocks)
	if err != nil {
		t.Fatal(err)
	}
	m.metrics = r
	m.state.workers = map[int]*worker{}
	return m, r
}

// A worker the previous image killed just before its exec is reaped by
// this one as a child it does not know: its block is folded all the same,
// its counts kept and its exit counted.
func TestUnknownChildFolded(t *testing.T) {
	m, r := metricsMaster(t, 2, 2)
	const pid = 4242
	if !r.Claim(1, 1, pid) {
		t.Fatal("claim failed")
	}
	rec, err := r.Recorder(1)
	if err != nil {
		t.Fatal(err)
	}
	rec.Add(metrics.Accepted, 3)
	rec.Set(metrics.OpenConns, 3)
	rec.Publish()
	m.onExit(pid, unix.WaitStatus(unix.SIGKILL), time.Now())
	snap := r.Snapshot()
	if len(snap.Slots) != 1 || snap.Slots[0].Slot != 1 {
		t.Fatalf("slots %+v", snap.Slots)
	}
	st := snap.Slots[0]
	if st.Workers != 0 || st.Scalars[metrics.OpenConns] != 0 {
		t.Fatalf("block still held: %d workers, %d open", st.Workers, st.Scalars[metrics.OpenConns])
	}
	if st.Scalars[metrics.Accepted] != 3 || st.Scalars[metrics.Exits(2)] != 1 {
		t.Fatalf("accepted %d (want 3), exits by killed %d (want 1)", st.Scalars[metrics.Accepted], st.Scalars[metrics.Exits(2)])
	}
	if b, ok := r.FreeBlock(); !ok || b != 0 {
		t.Fatalf("free block %d, %v", b, ok)
	}
	m.onExit(pid+1, 0, time.Now()) // no block: nothing counted
	if got := r.Snapshot().Slots[0].Scalars; got[metrics.Exits(0)] != 0 {
		t.Fatalf("a child without a block counted: %v", got)
	}
}

// A slot beyond the region gets no block: its worker runs uncounted and
// writes into no block another worker may be given.
func TestSlotBeyondRegionGetsNoBlock(t *testing.T) {
	m, r := metricsMaster(t, 2, 2)
	env := []string{"A=1"}
	block, fd, got := m.withBlock(2, env)
	if block != -1 || fd != -1 || !slices.Equal(got, env) {
		t.Fatalf("slot 2 of 2 got block %d, fd %d, env %q", block, fd, got)
	}
	if snap := r.Snapshot(); len(snap.Slots) != 0 {
		t.Fatalf("a block held: %+v", snap.Slots)
	}
	block, _, got = m.withBlock(1, env)
	if block != 0 || !slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, MetricsBlockEnv+"=0") }) {
		t.Fatalf("slot 1 got block %d, env %q", block, got)
	}
	if snap := r.Snapshot(); len(snap.Slots) != 1 || snap.Slots[0].Workers != 1 {
		t.Fatalf("reserved block not held: %+v", snap.Slots)
	}
	m.releaseBlock(block)
	if b, ok := r.FreeBlock(); !ok || b != 0 {
		t.Fatalf("released block not free: %d, %v", b, ok)
	}
}
