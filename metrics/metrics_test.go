package metrics

import (
	"testing"
)

func newTestRegion(t *testing.T, methods ...string) *Region {
	t.Helper()
	r, err := Format(make([]byte, Size(methods, 4, 8)), methods, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFoldKeepsCountsMonotonic(t *testing.T) {
	r := newTestRegion(t, "fib", "ping")
	b, _ := r.FreeBlock()
	if !r.Claim(b, 1, 100) {
		t.Fatal("claim failed")
	}
	rec, err := r.Recorder(b)
	if err != nil {
		t.Fatal(err)
	}
	ping := rec.Row([]byte("ping"))
	for range 3 {
		rec.Request(ping, CodeOK, 2000) // 2µs: the first bucket
	}
	rec.Request(rec.Row([]byte("nosuch")), CodeIndex("unknown_method"), 20e9)
	rec.Add(Accepted, 2)
	rec.Set(OpenConns, 2)
	if got := r.Snapshot(); len(got.Slots) != 1 || got.Slots[0].Rows[1].Requests() != 0 {
		t.Fatalf("counts visible before Publish: %+v", got.Slots)
	}
	rec.Publish()
	check := func(when string, workers int, open uint64) {
		t.Helper()
		snap := r.Snapshot()
		if len(snap.Slots) != 1 || snap.Slots[0].Slot != 1 || snap.Slots[0].Workers != workers {
			t.Fatalf("%s: slots %+v", when, snap.Slots)
		}
		st := snap.Slots[0]
		if row := st.Rows[1]; row.Codes[CodeOK] != 3 || row.Buckets[0] != 3 || row.SumNanos != 6000 {
			t.Fatalf("%s: ping row %+v", when, row)
		}
		if row := st.Rows[2]; row.Codes[2] != 1 || row.Buckets[len(Buckets)] != 1 {
			t.Fatalf("%s: other row %+v", when, row)
		}
		if st.Scalars[Accepted] != 2 || st.Scalars[OpenConns] != open {
			t.Fatalf("%s: accepted %d open %d", when, st.Scalars[Accepted], st.Scalars[OpenConns])
		}
	}
	check("running", 1, 2)
	if slot, ok := r.Fold(100); !ok || slot != 1 {
		t.Fatalf("fold: slot %d, %v; want slot 1", slot, ok)
	}
	if _, ok := r.Fold(100); ok {
		t.Fatal("folded pid 100 twice")
	}
	check("folded", 0, 0) // the counts stay, the gauge goes
	if b2, _ := r.FreeBlock(); b2 != b {
		t.Fatalf("block %d not freed (next free %d)", b, b2)
	}
	r.Claim(b, 1, 101) // a new worker of the slot starts from zero
	check("restarted", 1, 0)
}

func TestCodeIndex(t *testing.T) {
	for i, c := range Codes {
		if CodeIndex(c) != i {
			t.Fatalf("CodeIndex(%q) = %d, want %d", c, CodeIndex(c), i)
		}
	}
	if CodeIndex("mine") != CodeOther || Codes[CodeOverloaded] != "overloaded" || Codes[CodeTimeout] != "timeout" {
		t.Fatal("code table out of order")
	}
}

func TestLoadReadsFormat(t *testing.T) {
	methods := []string{"a", "b.c"}
	mem := make([]byte, Size(methods, 2, 3))
	if _, err := Format(mem, methods, 2, 3); err != nil {
		t.Fatal(err)
	}
	r, err := Load(mem)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Methods(); len(got) != 2 || got[1] != "b.c" || r.Slots() != 2 || r.Blocks() != 3 {
		t.Fatalf("loaded %v %d %d", got, r.Slots(), r.Blocks())
	}
	if _, err := Load(make([]byte, len(mem))); err == nil {
		t.Fatal("loaded a zeroed region")
	}
}

// A region formatted by an image with other numbers of codes, buckets or
// scalars is refused, even with the same version and method table.
func TestLoadRefusesOtherLayout(t *testing.T) {
	methods := []string{"a"}
	for _, other := range []uint64{
		layoutPrint + 1<<32, // one more code
		layoutPrint + 1<<16, // one more bucket
		layoutPrint - 1,     // one scalar less
	} {
		mem := make([]byte, Size(methods, 1, 1))
		if _, err := Format(mem, methods, 1, 1); err != nil {
			t.Fatal(err)
		}
		asWords(mem)[hLayout] = other
		if _, err := Load(mem); err == nil {
			t.Errorf("loaded a region laid out as %#x, this image %#x", other, uint64(layoutPrint))
		}
	}
}

func TestRecorderDoesNotAllocate(t *testing.T) {
	r := newTestRegion(t, "ping")
	rec, _ := r.Recorder(0)
	method := []byte("ping")
	if n := testing.AllocsPerRun(1000, func() {
		rec.Request(rec.Row(method), CodeOK, 1000)
		rec.Add(BytesRead, 10)
		rec.Publish()
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}
