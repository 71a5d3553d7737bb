package worker

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// poolNice is the nice value of the pool's threads, above the loop's: when
// blocking work keeps every CPU busy, the kernel still runs the loop's
// thread first, so inline answers and the writing of every answer wait less.
// poolSlice is the time slice they ask for, in ns: Linux's EEVDF scheduler
// lets a running thread use up its slice, milliseconds by default, before a
// woken thread preempts it, so the loop's thread, woken while a pool thread
// runs, waits about this long at most. Kernels before 6.12 ignore it.
const (
	poolNice  = 10
	poolSlice = 100_000
)

// lowerPriority binds the calling goroutine to its thread for good and lowers
// that thread's priority to poolNice, with a slice of poolSlice when the
// thread runs under SCHED_NORMAL or SCHED_BATCH; under another policy the
// process was given (chrt, systemd's CPUSchedulingPolicy), the policy stays
// and only nice is set. Linux sets both per thread. Where sched_setattr is
// refused, the thread gets the nice value alone; where that fails too, it
// stays as it was: the pool still runs, only without the priority.
func lowerPriority() {
	runtime.LockOSThread()
	tid := unix.Gettid()
	if attr, err := unix.SchedGetAttr(tid, 0); err == nil &&
		(attr.Policy == unix.SCHED_NORMAL || attr.Policy == unix.SCHED_BATCH) {
		attr.Nice, attr.Runtime = poolNice, poolSlice
		if unix.SchedSetAttr(tid, attr, 0) == nil {
			return
		}
	}
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, poolNice)
}
