// Package procfs reads the process tree from Linux's /proc for rpcd's
// process-level tests: which children a master has, and in what state.
package procfs

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Children lists, sorted, the pids of parent's children whose state (R, S,
// Z, ...) keep accepts; a nil keep accepts every state. A process that
// exits while it is read is left out.
func Children(parent int, keep func(state string) bool) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		state, ppid, ok := readStat(path)
		if !ok || ppid != parent || (keep != nil && !keep(state)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// Live accepts every state but zombie.
func Live(state string) bool { return state != "Z" }

// readStat returns the state and parent pid from a /proc/PID/stat file.
func readStat(path string) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	// The command name may hold spaces and parens; the fields after its
	// closing paren are state, ppid, ...
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", 0, false
	}
	rest := strings.Fields(string(b[i+1:]))
	if len(rest) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(rest[1])
	return rest[0], ppid, err == nil
}
