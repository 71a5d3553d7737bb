//go:build linux

package cmd

import (
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// defaultWorkers is the default of -workers: the CPUs this process may use.
// That is GOMAXPROCS when set in the environment; otherwise the CPUs in the
// affinity mask, lowered to the cgroup CPU quota rounded up. The quota is
// read here because the runtime's own default never goes below 2, so a
// container run with --cpus=1 would get two workers.
func defaultWorkers() int {
	n := runtime.GOMAXPROCS(0)
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return n
	}
	if quota := cgroupCPUs(os.DirFS("/")); quota > 0 && quota < n {
		return quota
	}
	return n
}

// spareLoopP returns the pool size that pool (0: the default) comes to, and
// when the pool has at least as many goroutines as there are Go processors
// (GOMAXPROCS) adds one processor for the event loop. Without it, blocking
// calls that keep every processor busy leave the loop, back from a system
// call, queued for one until the runtime preempts a pool goroutine: 10 ms.
// With it, the kernel decides between the loop's thread and the pool's, which
// run at a lower priority. A pool larger than the CPUs can still hold every
// processor with CPU-bound calls; one processor per pool goroutine would
// cost the collector more than it saves. GOMAXPROCS set by hand gets the one
// processor too, and a worker that adds it no longer follows later changes
// of its cgroup's CPU limit, which the master's worker count does not either.
func spareLoopP(pool int) int {
	procs := runtime.GOMAXPROCS(0)
	if pool == 0 {
		pool = procs
	}
	if pool >= procs {
		runtime.GOMAXPROCS(procs + 1)
	}
	return pool
}

// cgroupDir is a cgroup directory of this process that may hold a CPU limit.
type cgroupDir struct {
	dir   string // the process's cgroup, under mount
	mount string // where the hierarchy (or the part visible to us) is mounted
	v2    bool   // cgroup2 (cpu.max) rather than v1 (cpu.cfs_quota_us)
}

// cgroupCPUs returns the lowest CPU bandwidth limit on the cgroups of this
// process and their ancestors, rounded up to whole CPUs, or 0 when there is
// none. fsys is the root file system.
func cgroupCPUs(fsys fs.FS) int {
	groups, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	mounts, err := fs.ReadFile(fsys, "proc/self/mountinfo")
	if err != nil {
		return 0
	}
	lowest := 0
	for _, cg := range cpuCgroupDirs(string(groups), string(mounts)) {
		for dir := cg.dir; ; dir = path.Dir(dir) {
			if n := cpuLimit(fsys, dir, cg.v2); n > 0 && (lowest == 0 || n < lowest) {
				lowest = n
			}
			if dir == cg.mount || dir == "." || dir == "/" {
				break
			}
		}
	}
	return lowest
}

// cpuCgroupDirs maps the process's cgroup paths (/proc/self/cgroup) onto the
// mounts that show them (/proc/self/mountinfo): the cgroup2 hierarchy, and
// the v1 hierarchy that carries the cpu controller.
func cpuCgroupDirs(groups, mountinfo string) []cgroupDir {
	var v1, v2 string
	var haveV1, haveV2 bool
	for _, line := range strings.Split(groups, "\n") {
		id, rest, _ := strings.Cut(line, ":")
		controllers, p, ok := strings.Cut(rest, ":")
		switch {
		case !ok:
		case id == "0" && controllers == "":
			v2, haveV2 = p, true
		case hasOption(controllers, "cpu"):
			v1, haveV1 = p, true
		}
	}
	var dirs []cgroupDir
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		mf, pf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(mf) < 5 || len(pf) < 3 {
			continue
		}
		root, mount := mf[3], strings.TrimPrefix(mf[4], "/")
		switch {
		case pf[0] == "cgroup2" && haveV2:
			if dir, ok := under(mount, root, v2); ok {
				dirs = append(dirs, cgroupDir{dir: dir, mount: mount, v2: true})
			}
		case pf[0] == "cgroup" && haveV1 && hasOption(pf[2], "cpu"):
			if dir, ok := under(mount, root, v1); ok {
				dirs = append(dirs, cgroupDir{dir: dir, mount: mount})
			}
		}
	}
	return dirs
}

// under returns where cgroup path p shows in a mount of the hierarchy's
// root-directory root, if it shows there at all.
func under(mount, root, p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, root)
	if !ok || (rel != "" && root != "/" && rel[0] != '/') {
		return "", false
	}
	return path.Join(mount, rel), true
}

func hasOption(list, name string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// cpuLimit reads the CPU bandwidth limit of one cgroup directory, rounded up
// to whole CPUs, or 0 when it has none.
func cpuLimit(fsys fs.FS, dir string, v2 bool) int {
	var quota, period string
	if v2 {
		b, err := fs.ReadFile(fsys, path.Join(dir, "cpu.max"))
		if err != nil {
			return 0
		}
		quota, period, _ = strings.Cut(strings.TrimSpace(string(b)), " ")
	} else {
		q, err1 := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_quota_us"))
		p, err2 := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_period_us"))
		if err1 != nil || err2 != nil {
			return 0
		}
		quota, period = strings.TrimSpace(string(q)), strings.TrimSpace(string(p))
	}
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0 // "max" or -1: no limit
	}
	return int((q + p - 1) / p)
}
