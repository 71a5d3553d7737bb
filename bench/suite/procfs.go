package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// childPIDs lists the live direct children of pid (a prefork server's workers).
func childPIDs(pid int) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// treeRSS sums the resident memory, in bytes, of pid and its direct children.
func treeRSS(pid int) (int64, error) {
	total := int64(0)
	for _, p := range append([]int{pid}, childPIDs(pid)...) {
		rss, err := processRSS(p)
		if err != nil {
			return 0, err
		}
		total += rss
	}
	return total, nil
}

// processRSS reads VmRSS from /proc/<pid>/status.
func processRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		fields := strings.Fields(string(line[len("VmRSS:"):]))
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("read rss of %d: unexpected line %q", pid, line)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read rss of %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("read rss of %d: no VmRSS line", pid)
}
