package master

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// ExitError reports how a child of the master ended: a worker, or the run
// that checks a new binary before an upgrade.
type ExitError struct {
	Pid    int
	Status unix.WaitStatus
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("process %d exited: %s", e.Pid, describeStatus(e.Status))
}

// describeStatus words a wait status the way os.ProcessState does:
// "exit status 1", "signal: killed".
func describeStatus(st unix.WaitStatus) string {
	switch {
	case st.Exited():
		return "exit status " + strconv.Itoa(st.ExitStatus())
	case st.Signaled():
		s := "signal: " + st.Signal().String()
		if st.CoreDump() {
			s += " (core dumped)"
		}
		return s
	default:
		return fmt.Sprintf("wait status %#x", uint32(st))
	}
}
