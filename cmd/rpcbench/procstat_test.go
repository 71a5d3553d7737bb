package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// statLine renders a /proc/<pid>/stat line with the given accounting fields.
func statLine(pid int, comm string, ppid int, utime, stime, cutime, cstime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194304 99 0 0 0 %d %d %d %d 20 0 1 0 25195 3133440 406\n",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime)
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			line: statLine(12, "rpcd", 1, 100, 20, 5, 1),
			want: procStat{pid: 12, ppid: 1, utime: 100, stime: 20, cutime: 5, cstime: 1},
		},
		{
			name: "name with spaces and parentheses",
			line: statLine(7, "a (b) c)", 3, 1, 2, 3, 4),
			want: procStat{pid: 7, ppid: 3, utime: 1, stime: 2, cutime: 3, cstime: 4},
		},
		{name: "no name", line: "12 S 1 2 3", wantErr: true},
		{name: "truncated", line: "12 (x) S 1 2 3 4", wantErr: true},
		{name: "bad pid", line: statLine(1, "x", 0, 0, 0, 0, 0)[1:], wantErr: true},
		{name: "bad utime", line: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 u 0 0 0 20", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.line))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseProcStat(%q) = %+v, want an error", tt.line, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseProcStat(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestSampleTreeCPUFakeProc(t *testing.T) {
	root := t.TempDir()
	procs := []struct {
		pid, ppid                    int
		utime, stime, cutime, cstime uint64
	}{
		{pid: 100, ppid: 1, utime: 10, stime: 5, cutime: 30, cstime: 7}, // master
		{pid: 101, ppid: 100, utime: 200, stime: 50},                    // worker
		{pid: 102, ppid: 100, utime: 300, stime: 60, cutime: 1000},      // worker; its children are not counted
		{pid: 103, ppid: 102, utime: 999, stime: 999},                   // grandchild
		{pid: 104, ppid: 1, utime: 999, stime: 999},                     // unrelated
	}
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		line := statLine(p.pid, "proc", p.ppid, p.utime, p.stime, p.cutime, p.cstime)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A process that exited between listing and reading, and a non-process entry.
	for _, name := range []string{"105", "self"} {
		if err := os.Mkdir(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	got, err := sampleTreeCPU(root, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := cpuSample{ticks: 10 + 5 + 30 + 7 + 200 + 50 + 300 + 60, procs: 3}
	if got != want {
		t.Errorf("sampleTreeCPU = %+v, want %+v", got, want)
	}
	if _, err := sampleTreeCPU(root, 999); err == nil {
		t.Error("sampleTreeCPU of a missing pid succeeded")
	}
}

func TestReadProcStatSelf(t *testing.T) {
	st, err := readProcStat(procRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != os.Getpid() || st.ppid != os.Getppid() {
		t.Fatalf("own stat pid %d ppid %d, want %d and %d", st.pid, st.ppid, os.Getpid(), os.Getppid())
	}
	// Burn CPU until the kernel has charged at least two more ticks to utime+stime.
	start := st.utime + st.stime
	deadline := time.Now().Add(10 * time.Second)
	sink := 0
	for st.utime+st.stime < start+2 {
		if time.Now().After(deadline) {
			t.Fatalf("cpu ticks stayed at %d after 10s of spinning", st.utime+st.stime)
		}
		for i := range 1_000_000 {
			sink += i
		}
		if st, err = readProcStat(procRoot, os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	_ = sink
}

// childEnv makes the test binary act as an idle child process (see TestMain).
const childEnv = "RPCBENCH_TEST_IDLE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		// Idle until the parent closes stdin.
		_, _ = os.Stdin.Read(make([]byte, 1))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSampleTreeCPUCountsChildren(t *testing.T) {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := child.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()

	children, err := childStats(procRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(children, func(s procStat) bool { return s.pid == child.Process.Pid }) {
		t.Errorf("children of %d = %+v, want pid %d among them", os.Getpid(), children, child.Process.Pid)
	}
	sample, err := sampleTreeCPU(procRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if sample.procs < 2 {
		t.Errorf("sample counts %d processes, want the test and its child", sample.procs)
	}
}
