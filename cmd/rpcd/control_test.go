//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/cmd"
	"github.com/rpcd/rpcd/cmd/cacheext"
	"github.com/rpcd/rpcd/cmd/rpcdtest"
	"github.com/rpcd/rpcd/handlers/cache"
	"github.com/rpcd/rpcd/internal/procfs"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/rpc"
)

// spinMethodEnv, set to 1, makes the test binary serve test.spin too: an
// inline method that never returns, so its worker's event loop stops.
const spinMethodEnv = "RPCD_TEST_SPIN_METHOD"

// mainWithSpin is main with test.spin registered.
func mainWithSpin() {
	store := cache.New()
	reg := registry(store)
	reg.Register("test.spin", rpc.Inline, spinForever)
	cmd.Main(reg, cacheext.New(store))
}

// spinForever is a handler stuck in a loop that never yields.
//
//go:noinline
func spinForever(context.Context, []byte, *rpc.Reply) error {
	for n := 0; ; n++ {
		if n < 0 {
			return nil
		}
	}
}

// A worker whose event loop is stuck in a handler is sent SIGABRT at
// -worker-timeout: its stderr then holds every goroutine's stack, the
// spinning handler's included, and its slot gets a new worker.
func TestHungWorkerLeavesStacks(t *testing.T) {
	t.Setenv(spinMethodEnv, "1")
	s := startServer(t, "-workers=1", "-worker-timeout=2s")
	hung := s.workerPids()[0]
	c := dial(t, s.addr)
	if err := c.send("test.spin", "null"); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, 15*time.Second, func(e logEntry) bool {
		return e.Msg == "worker timed out; killing" && e.Fields["pid"] == float64(hung) && e.Fields["signal"] == "aborted"
	})
	s.logs.wait(t, 15*time.Second, func(e logEntry) bool {
		pid, _ := e.Fields["pid"].(float64)
		return e.Msg == "worker ready" && int(pid) != hung && e.Fields["role"] == "master"
	})
	var stacks, spinning int
	for _, e := range s.logs.all() {
		switch {
		case strings.HasPrefix(e.raw, "goroutine "):
			stacks++
		case strings.Contains(e.raw, "spinForever("):
			spinning++
		}
	}
	if stacks < 2 || spinning == 0 {
		t.Fatalf("%d goroutine stacks, %d naming spinForever, want every goroutine's and the handler's; output:\n%s",
			stacks, spinning, s.logs.dump())
	}
	mustPing(t, dial(t, s.addr), `"after the hung worker"`)
}

// With -log-file, what the Go runtime writes on the abort goes to the log
// file too: a worker's stderr is the file.
func TestHungWorkerStacksReachLogFile(t *testing.T) {
	t.Setenv(spinMethodEnv, "1")
	logPath := filepath.Join(t.TempDir(), "rpcd.log")
	launch(t, "-listen=127.0.0.1:0", "-workers=1", "-worker-timeout=2s", "-log-format=json", "-log-file="+logPath)
	waitFileHas(t, logPath, `"msg":"master ready"`)
	c := dial(t, readyAddr(t, logPath))
	if err := c.send("test.spin", "null"); err != nil {
		t.Fatal(err)
	}
	waitFileHas(t, logPath, "spinForever(")
}

// readyAddr is the address in the "master ready" line of the log file at
// path.
func readyAddr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		var e struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "master ready" && e.Addr != "" {
			return e.Addr
		}
	}
	t.Fatalf("no address in %s's master ready line", path)
	return ""
}

// Each SIGTTIN that reaches the master adds a slot. They are sent one at
// a time, each once the master has logged the one before: the kernel and
// the Go runtime merge a signal with a repeat that is still pending.
func TestEverySignalledTTINAddsAWorker(t *testing.T) {
	const n = 5
	s := startServer(t, "-workers=1")
	for i := range n {
		signal(t, s, syscall.SIGTTIN)
		waitLog(t, s, 0, 10*time.Second, "SIGTTIN received", func(es []logEntry) bool {
			return countSignal(es, "stopped (tty input)") == i+1
		})
	}
	waitLog(t, s, 0, 30*time.Second, "the added workers ready", func(es []logEntry) bool {
		return countMsg(es, "adding worker") == n && findMsg(es, "worker ready", "slot", float64(n)) != nil
	})
	if got := len(s.workerPids()); got != n+1 {
		t.Fatalf("%d workers after %d SIGTTINs, want %d", got, n, n+1)
	}
}

// The master holds its pidfile locked for its whole life, across an
// upgrade: a second master on the same file refuses to start, and -s stop
// reaches the master after the upgrade.
func TestPidfileLockedAcrossUpgrade(t *testing.T) {
	dir := t.TempDir()
	bin, pidfile := filepath.Join(dir, "rpcd"), filepath.Join(dir, "rpcd.pid")
	installBinary(t, bin)
	s := launchBinary(t, bin, "-listen=127.0.0.1:0", "-workers=1", "-log-format=json", "-pidfile="+pidfile)
	s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	secondMasterRefuses(t, pidfile, s.pid())

	from := len(s.logs.all())
	signal(t, s, syscall.SIGUSR2)
	waitLog(t, s, from, 60*time.Second, "upgraded generation ready", func(es []logEntry) bool {
		return findMsg(es, "new generation ready", "reason", "upgrade") != nil
	})
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != strconv.Itoa(s.pid())+"\n" {
		t.Fatalf("pidfile holds %q, %v after the upgrade; want %d", b, err, s.pid())
	}
	secondMasterRefuses(t, pidfile, s.pid())
	control(t, pidfile, "stop")
	if code := s.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile left behind: %v", err)
	}
	// Left behind by a master that was killed, the file holds a pid that
	// may be reused: -s must not signal it.
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := rpcdtest.Command(os.Args[0], "-s", "stop", "-pidfile="+pidfile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is stale") {
		t.Fatalf("-s stop on a stale pidfile: %v: %s; want a refusal", err, out)
	}
}

// secondMasterRefuses starts another master on pidfile and checks that it
// exits 1 naming the running one, leaving the file as it was.
func secondMasterRefuses(t *testing.T, pidfile string, running int) {
	t.Helper()
	cmd := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0", "-workers=1", "-log-format=json", "-pidfile="+pidfile)
	// A second master that wrongly starts must not hold the test up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	second.Env = cmd.Env
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second master: %v, want exit 1; output:\n%s", err, out)
	}
	if want := "locked by a running master (pid " + strconv.Itoa(running) + ")"; !strings.Contains(string(out), want) {
		t.Errorf("second master said %s; want %q", out, want)
	}
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != strconv.Itoa(running)+"\n" {
		t.Errorf("pidfile holds %q, %v after the refusal; want %d", b, err, running)
	}
}

// A configuration file that sets nothing, as one truncated mid-deploy, is
// refused by -t and by SIGHUP: the server stays on its configured address
// instead of moving to the default one.
func TestEmptyConfigKeepsServer(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "rpcd.yaml")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:0\nworkers: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := launch(t, "-config="+conf, "-log-format=json")
	s.logs.allowErrors("reload failed; keeping the running generation")
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	s.addr, _ = ready.Fields["addr"].(string)
	c := dial(t, s.addr)
	mustPing(t, c, `"before"`)

	if err := os.WriteFile(conf, []byte("# listen: 127.0.0.1:9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := rpcdtest.Command(os.Args[0], "-t", "-config="+conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "sets nothing") {
		t.Fatalf("rpcd -t on a file that sets nothing: %v: %s; want a refusal", err, out)
	}
	from := len(s.logs.all())
	signal(t, s, syscall.SIGHUP)
	waitLog(t, s, from, 10*time.Second, "reload refused", func(es []logEntry) bool {
		return countMsg(es, "reload failed; keeping the running generation") == 1
	})
	if n := countMsg(s.logs.all()[from:], "starting new generation"); n != 0 {
		t.Fatalf("a file that sets nothing started %d generations", n)
	}
	mustPing(t, c, `"after"`)
	mustPing(t, dial(t, s.addr), `"new connection after"`)
}

// A reader of rpcd's stderr that goes away (rpcd | head -1) fails the
// writes to it; master and workers go on serving, and a reload still works.
func TestServesAfterLogReaderLeaves(t *testing.T) {
	cmd := rpcdtest.Command(os.Args[0], "-listen=127.0.0.1:0", "-workers=1", "-log-format=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	var addr string
	lines := bufio.NewScanner(stderr)
	for addr == "" && lines.Scan() {
		var e struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &e) == nil && e.Msg == "master ready" {
			addr = e.Addr
		}
	}
	if addr == "" {
		t.Fatal("no master ready line")
	}
	stderr.Close() // the reader leaves
	// Each reload logs, and so writes to the closed pipe; only a master
	// that lives on starts the next generation's worker.
	master := cmd.Process.Pid
	for i := range 3 {
		before := procfs.Children(master, procfs.Live)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitfor.Until(t, 20*time.Second, fmt.Sprintf("reload %d's new worker", i), func() bool {
			now := procfs.Children(master, procfs.Live)
			return len(now) == 1 && !slices.Contains(before, now[0])
		})
		mustPing(t, dial(t, addr), fmt.Sprintf(`"after reload %d"`, i))
	}
}
