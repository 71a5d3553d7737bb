package worker

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/rpc"
)

// A blocking call runs on a thread at poolNice, with a slice of poolSlice
// where the kernel keeps custom slices.
func TestPoolThreadsRunBelowTheLoop(t *testing.T) {
	reg := rpc.NewRegistry()
	reg.Register("where", rpc.Blocking, func(_ context.Context, _ []byte, rep *rpc.Reply) error {
		rep.SetRaw(strconv.AppendInt(nil, int64(unix.Gettid()), 10))
		return nil
	})
	s := startQuiet(t, Config{PoolSize: 1}, reg)
	c := dial(t, s.addr)
	c.write(request("where", ""))
	_, result := c.answer()
	tid, err := strconv.Atoi(result)
	if err != nil {
		t.Fatalf("answer %s: %v", result, err)
	}
	// The system call answers 20 - nice, so that it is never negative.
	if prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err != nil || 20-prio != poolNice {
		t.Errorf("pool thread %d runs at nice %d (%v), want %d", tid, 20-prio, err, poolNice)
	}
	attr, err := unix.SchedGetAttr(tid, 0)
	if err == unix.ENOSYS || err == unix.EPERM {
		t.Skipf("sched_getattr refused here (%v): the slice is not checked", err)
	}
	if err != nil {
		t.Fatalf("sched_getattr: %v", err)
	}
	if attr.Runtime != poolSlice {
		if !keepsSlices(t) {
			t.Skipf("this kernel keeps no custom time slice (pool thread %d reports %d ns)", tid, attr.Runtime)
		}
		t.Errorf("pool thread %d asks for a slice of %d ns, want %d", tid, attr.Runtime, poolSlice)
	}
}

// keepsSlices reports whether a thread of this process may ask for a time
// slice of its own and reads it back, as kernels from 6.12 allow.
func keepsSlices(t *testing.T) bool {
	t.Helper()
	kept := make(chan bool)
	go func() {
		runtime.LockOSThread() // the thread exits with the goroutine
		tid := unix.Gettid()
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			kept <- false
			return
		}
		attr.Runtime = poolSlice
		if unix.SchedSetAttr(tid, attr, 0) != nil {
			kept <- false
			return
		}
		attr, err = unix.SchedGetAttr(tid, 0)
		kept <- err == nil && attr.Runtime == poolSlice
	}()
	return <-kept
}
