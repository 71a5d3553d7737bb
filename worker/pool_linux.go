package worker

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// poolNice is the nice value of the pool's threads, above the loop's: when
// blocking work keeps every CPU busy, the kernel still runs the loop's
// thread first, so inline answers and the writing of every answer wait less.
const poolNice = 10

// lowerPriority binds the calling goroutine to its thread for good and lowers
// that thread's priority to poolNice. Linux sets nice per thread. A failure
// leaves the thread as it was: the pool still runs, only without the
// priority.
func lowerPriority() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), poolNice)
}
