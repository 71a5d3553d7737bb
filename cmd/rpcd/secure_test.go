//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/master"
)

// failWorkersEnv names a file: while it exists, a worker process of the
// test binary exits 1 before it is ready, as a new binary whose workers
// cannot start would.
const failWorkersEnv = "RPCD_TEST_FAIL_WORKERS_IF"

func failWorkerIfAsked() {
	_, worker := os.LookupEnv(master.WorkerSlotEnv)
	if path := os.Getenv(failWorkersEnv); worker && path != "" {
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintln(os.Stderr, "test worker: failing as asked")
			os.Exit(1)
		}
	}
}

// fakeRedis accepts connections on 127.0.0.1 and records what clients send
// until it has seen want, answering nothing.
type fakeRedis struct {
	ln   net.Listener
	want []byte
	seen atomic.Bool
}

func startFakeRedis(t *testing.T, want string) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRedis{ln: ln, want: []byte(want)}
	t.Cleanup(func() { ln.Close() })
	go r.serve()
	return r
}

func (r *fakeRedis) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var got []byte
			buf := make([]byte, 4096)
			for len(got) < 1<<16 {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if bytes.Contains(got, r.want) {
					r.seen.Store(true)
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// A password from the configuration file reaches the workers, which use it
// to authenticate, but never their command lines, which every user can read
// in /proc.
func TestWorkerCommandLineHoldsNoSecret(t *testing.T) {
	const secret = "s3cret-from-the-config-file"
	redis := startFakeRedis(t, secret)
	conf := filepath.Join(t.TempDir(), "rpcd.yaml")
	text := fmt.Sprintf("workers: 2\nredis: %s\nredis-password: %s\n", redis.ln.Addr(), secret)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "-config="+conf)
	workers := s.workerPids()
	if len(workers) != 2 {
		t.Fatalf("workers %v, want 2", workers)
	}
	for _, pid := range workers {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if strings.Contains(string(cmdline), secret) || len(args) != 1 {
			t.Errorf("worker %d command line %q, want the binary alone", pid, args)
		}
	}
	waitfor.Until(t, 10*time.Second, "a worker to send the password to Redis", redis.seen.Load)
}

// A new binary that passes -t but whose workers never become ready: the
// master has executed it, yet the old workers keep serving throughout, and
// the log says why.
func TestUpgradeWhoseWorkersFail(t *testing.T) {
	dir := t.TempDir()
	bin, failFlag := filepath.Join(dir, "rpcd"), filepath.Join(dir, "fail-workers")
	installBinary(t, bin)
	t.Setenv(failWorkersEnv, failFlag)
	s := launchBinary(t, bin, "-listen=127.0.0.1:0", "-workers=2", "-log-format=json")
	s.logs.allowErrors("upgrade failed; keeping the running generation")
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	s.addr, _ = ready.Fields["addr"].(string)
	old := s.workerPids()

	installBinary(t, bin)
	newIno := inode(t, bin)
	if err := os.WriteFile(failFlag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPinging(t, s.addr)
	from := len(s.logs.all())
	signal(t, s, syscall.SIGUSR2)
	es := waitLog(t, s, from, 60*time.Second, "the upgrade's rollout to fail", func(es []logEntry) bool {
		return findMsg(es, "upgrade failed; keeping the running generation", "role", "master") != nil
	})
	failed := findMsg(es, "upgrade failed; keeping the running generation", "role", "master")
	if why, _ := failed.Fields["error"].(string); !strings.Contains(why, "exit status 1") {
		t.Errorf("the log does not say why: %s", failed.raw)
	}
	if got := inode(t, fmt.Sprintf("/proc/%d/exe", s.pid())); got != newIno {
		t.Fatalf("master runs inode %d, want the new binary's %d: it never executed it", got, newIno)
	}
	after := p.n.Load()
	waitfor.Until(t, 10*time.Second, "pings answered after the failure", func() bool { return p.n.Load() >= after+20 })
	if n, errs := p.stop(); len(errs) > 0 || n == 0 {
		t.Fatalf("%d pings answered across the upgrade; failures: %v", n, errs)
	}
	if now := s.workerPids(); len(now) != len(old) || now[0] != old[0] || now[1] != old[1] {
		t.Errorf("workers %v after the failed upgrade, want the old %v", now, old)
	}
	mustPing(t, dial(t, s.addr), `"after the failed upgrade"`)
	signal(t, s, syscall.SIGTERM)
	if code := s.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
}

// pinger pings addr on one long connection and on a new connection each
// round until stopped.
type pinger struct {
	quit chan struct{}
	wg   sync.WaitGroup
	n    atomic.Int64
	mu   sync.Mutex
	errs []error
}

func startPinging(t *testing.T, addr string) *pinger {
	p := &pinger{quit: make(chan struct{})}
	long := dial(t, addr)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-p.quit:
				return
			default:
			}
			if err := pingOn(long, seq(1, i)); err != nil {
				p.fail(err)
				return
			}
			if _, err := pingCleanEOF(addr, seq(2, i)); err != nil {
				p.fail(err)
				return
			}
			p.n.Add(2)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func pingOn(c *client, params string) error {
	if err := c.send("ping", params); err != nil {
		return err
	}
	out, res, err := c.recv()
	if err == nil && (out != "pong" || res != params) {
		err = fmt.Errorf("ping %s answered %s %s", params, out, res)
	}
	return err
}

func (p *pinger) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *pinger) stop() (answered int64, errs []error) {
	close(p.quit)
	p.wg.Wait()
	return p.n.Load(), p.errs
}
