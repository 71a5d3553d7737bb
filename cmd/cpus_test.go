//go:build linux

package cmd

import (
	"runtime"
	"testing"
	"testing/fstest"
)

// Mount tables as a container and a host show them.
const (
	dockerV1Mounts = `74 73 0:45 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
75 74 0:29 /docker/abc /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu
76 74 0:30 /docker/abc /sys/fs/cgroup/cpuacct ro,nosuid - cgroup cgroup rw,cpuacct
`
	dockerV1Groups = `2:cpuacct:/docker/abc
1:cpu:/docker/abc
0::/docker/abc
`
	hostV1Mounts = `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	hostV1Groups = `4:cpu,cpuacct:/system.slice/rpcd.service
0::/system.slice/rpcd.service
`
	v2Mounts = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	v2Root   = "0::/\n"
	v2Nested = "0::/kubepods.slice/pod1/ctr\n"
)

func TestCgroupCPUs(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int
	}{
		{name: "no proc files", files: nil, want: 0},
		{name: "v2 one cpu", want: 1, files: map[string]string{
			"proc/self/cgroup": v2Root, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/cpu.max": "100000 100000\n"}},
		{name: "v2 one and a half cpus round up", want: 2, files: map[string]string{
			"proc/self/cgroup": v2Root, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/cpu.max": "150000 100000\n"}},
		{name: "v2 half a cpu is one", want: 1, files: map[string]string{
			"proc/self/cgroup": v2Root, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/cpu.max": "50000 100000\n"}},
		{name: "v2 no limit", want: 0, files: map[string]string{
			"proc/self/cgroup": v2Root, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/cpu.max": "max 100000\n"}},
		{name: "v2 parent limit is lower", want: 2, files: map[string]string{
			"proc/self/cgroup": v2Nested, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/kubepods.slice/pod1/ctr/cpu.max": "400000 100000\n",
			"sys/fs/cgroup/kubepods.slice/pod1/cpu.max":     "200000 100000\n",
			"sys/fs/cgroup/kubepods.slice/cpu.max":          "max 100000\n"}},
		{name: "v1 docker --cpus=1", want: 1, files: map[string]string{
			"proc/self/cgroup": dockerV1Groups, "proc/self/mountinfo": dockerV1Mounts,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}},
		{name: "v1 docker without --cpus", want: 0, files: map[string]string{
			"proc/self/cgroup": dockerV1Groups, "proc/self/mountinfo": dockerV1Mounts,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}},
		{name: "v1 systemd CPUQuota=300%", want: 3, files: map[string]string{
			"proc/self/cgroup": hostV1Groups, "proc/self/mountinfo": hostV1Mounts,
			"sys/fs/cgroup/cpu,cpuacct/system.slice/rpcd.service/cpu.cfs_quota_us":  "300000\n",
			"sys/fs/cgroup/cpu,cpuacct/system.slice/rpcd.service/cpu.cfs_period_us": "100000\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":                            "-1\n",
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us":                           "100000\n"}},
		{name: "garbage limit is ignored", want: 0, files: map[string]string{
			"proc/self/cgroup": v2Root, "proc/self/mountinfo": v2Mounts,
			"sys/fs/cgroup/cpu.max": "lots\n"}},
		{name: "cgroup outside the visible mount", want: 0, files: map[string]string{
			"proc/self/cgroup": "1:cpu:/other\n", "proc/self/mountinfo": dockerV1Mounts,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "100000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			if got := cgroupCPUs(fsys); got != tt.want {
				t.Errorf("cgroupCPUs = %d, want %d", got, tt.want)
			}
		})
	}
}

// A worker's event loop keeps a processor of its own beside its pool.
func TestSpareLoopP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	if got := spareLoopP(0); got != 2 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("default pool: size %d, GOMAXPROCS %d; want 2 and 3", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(2)
	if got := spareLoopP(64); got != 64 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("-pool-size=64: size %d, GOMAXPROCS %d; want 64 and 3", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(8)
	if got := spareLoopP(1); got != 1 || runtime.GOMAXPROCS(0) != 8 {
		t.Errorf("-pool-size=1 under GOMAXPROCS=8: size %d, GOMAXPROCS %d; want 1 and 8 kept", got, runtime.GOMAXPROCS(0))
	}
}
