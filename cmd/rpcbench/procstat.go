package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of the times in /proc/<pid>/stat.
// Linux fixes it at 100 for user space on every architecture.
const clockTicksPerSecond = 100

// procStat holds the fields of /proc/<pid>/stat that CPU accounting needs.
type procStat struct {
	pid, ppid      int
	utime, stime   uint64 // the process's own CPU time, in clock ticks
	cutime, cstime uint64 // CPU time of its children that exited and were reaped
}

// parseProcStat parses the contents of a /proc/<pid>/stat file. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from its last ')'.
func parseProcStat(data []byte) (procStat, error) {
	open := bytes.IndexByte(data, '(')
	closing := bytes.LastIndexByte(data, ')')
	if open < 1 || closing < open {
		return procStat{}, errors.New("parse proc stat: no command name")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("parse proc stat pid: %w", err)
	}
	// After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	fields := bytes.Fields(data[closing+1:])
	const firstField, lastField = 3, 17
	if len(fields) < lastField-firstField+1 {
		return procStat{}, fmt.Errorf("parse proc stat of %d: only %d fields", pid, len(fields)+2)
	}
	field := func(n int) []byte { return fields[n-firstField] }
	st := procStat{pid: pid}
	if st.ppid, err = strconv.Atoi(string(field(4))); err != nil {
		return procStat{}, fmt.Errorf("parse proc stat ppid of %d: %w", pid, err)
	}
	for i, dst := range []*uint64{&st.utime, &st.stime, &st.cutime, &st.cstime} {
		// cutime and cstime are signed in the kernel's format but never negative.
		if *dst, err = strconv.ParseUint(string(field(14+i)), 10, 64); err != nil {
			return procStat{}, fmt.Errorf("parse proc stat field %d of %d: %w", 14+i, pid, err)
		}
	}
	return st, nil
}

// readProcStat reads and parses <procRoot>/<pid>/stat.
func readProcStat(procRoot string, pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseProcStat(data)
}

// childStats returns the stats of the live direct children of ppid. Processes
// that exit during the scan are skipped.
func childStats(procRoot string, ppid int) ([]procStat, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var children []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == ppid {
			continue // not a process directory
		}
		st, err := readProcStat(procRoot, pid)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st.ppid == ppid {
			children = append(children, st)
		}
	}
	return children, nil
}

// cpuSample is the CPU time a process tree had used at one moment.
type cpuSample struct {
	ticks uint64 // process + live children + reaped children
	procs int    // the process and its live direct children
}

// sampleTreeCPU sums the CPU time of pid, of its live direct children, and of
// its children that already exited and were reaped (cutime, cstime), so that
// workers replaced between two samples are still counted.
func sampleTreeCPU(procRoot string, pid int) (cpuSample, error) {
	parent, err := readProcStat(procRoot, pid)
	if err != nil {
		return cpuSample{}, err
	}
	children, err := childStats(procRoot, pid)
	if err != nil {
		return cpuSample{}, err
	}
	s := cpuSample{
		ticks: parent.utime + parent.stime + parent.cutime + parent.cstime,
		procs: 1 + len(children),
	}
	for _, c := range children {
		s.ticks += c.utime + c.stime
	}
	return s, nil
}

// ticksToDuration converts clock ticks to time.
func ticksToDuration(ticks uint64) time.Duration {
	return time.Duration(ticks) * (time.Second / clockTicksPerSecond)
}
