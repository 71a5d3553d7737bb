package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// allServers are the servers compared, in table order.
var allServers = []string{"rpcd", "rpcd-1w", "goserver", "gnet", "redis"}

// serverKind says how to build and start one server.
type serverKind struct {
	pkg   string // Go package to build, relative to its module; "" for redis-server
	inRPC bool   // the package is in rpcd's module (else in bench)
	args  func(o options, bin, port string) []string
	redis bool // speaks RESP: rpcbench runs with -redis
}

var serverKinds = map[string]serverKind{
	"rpcd": {pkg: "./cmd/rpcd", inRPC: true, args: func(o options, bin, port string) []string {
		return rpcdArgs(bin, port, o.workers)
	}},
	// One worker, like single-threaded redis: on a machine whose few cores the
	// load client shares, one loop collects more events per wake-up than two
	// (0.90 × the CPU per request at depth 1, median of 29 paired rounds).
	"rpcd-1w": {pkg: "./cmd/rpcd", inRPC: true, args: func(_ options, bin, port string) []string {
		return rpcdArgs(bin, port, 1)
	}},
	// rpcd counting into its shared metrics region, beside "rpcd" for the
	// cost of the counters.
	"rpcd-metrics": {pkg: "./cmd/rpcd", inRPC: true, args: func(o options, bin, port string) []string {
		return append(rpcdArgs(bin, port, o.workers), "-metrics-listen", "127.0.0.1:0")
	}},
	// rpcd in front of the cache runs' redis-server.
	"rpcd-cache": {pkg: "./cmd/rpcd", inRPC: true, args: func(o options, bin, port string) []string {
		return append(rpcdArgs(bin, port, o.workers), "-redis", o.cacheRedis)
	}},
	"rpcd-1w-cache": {pkg: "./cmd/rpcd", inRPC: true, args: func(o options, bin, port string) []string {
		return append(rpcdArgs(bin, port, 1), "-redis", o.cacheRedis)
	}},
	"goserver": {pkg: "./goserver", args: func(_ options, bin, port string) []string {
		return []string{bin, "-listen", "127.0.0.1:" + port}
	}},
	"gnet": {pkg: "./gnetserver", args: func(_ options, bin, port string) []string {
		return []string{bin, "-listen", "127.0.0.1:" + port}
	}},
	"redis": {redis: true, args: func(_ options, bin, port string) []string {
		return []string{bin, "--port", port, "--bind", "127.0.0.1",
			// Protected mode refuses loopback sources other than 127.0.0.1,
			// which the idle test uses; the server is bound to 127.0.0.1 alone.
			"--protected-mode", "no", "--save", "", "--appendonly", "no",
			"--maxclients", "15000", "--loglevel", "warning"}
	}},
}

// rpcdArgs starts rpcd with workers worker processes.
func rpcdArgs(bin, port string, workers int) []string {
	return []string{bin, "-listen", "127.0.0.1:" + port, "-workers", strconv.Itoa(workers), "-log-level", "warn"}
}

// binaries maps server names, and "rpcbench", to executables.
type binaries map[string]string

// build compiles rpcbench and the Go servers into work and finds redis-server.
func build(o options, work string) (binaries, error) {
	bins := binaries{"rpcbench": filepath.Join(work, "rpcbench")}
	if err := goBuild(o.root, "./cmd/rpcbench", bins["rpcbench"]); err != nil {
		return nil, err
	}
	names := o.servers
	if o.cacheConns > 0 {
		names = append(slices.Clone(names), "rpcd-cache", "rpcd-1w-cache", "redis")
	}
	if o.blockingConns > 0 {
		names = append(slices.Clone(names), "rpcd")
	}
	for _, name := range names {
		if bins[name] != "" {
			continue
		}
		k := serverKinds[name]
		if k.pkg == "" {
			path, err := exec.LookPath("redis-server")
			if err != nil {
				return nil, fmt.Errorf("find redis-server (apt-get install redis-server): %w", err)
			}
			bins[name] = path
			continue
		}
		dir := "."
		if k.inRPC {
			dir = o.root
		}
		bins[name] = filepath.Join(work, name)
		if err := goBuild(dir, k.pkg, bins[name]); err != nil {
			return nil, err
		}
	}
	return bins, nil
}

func goBuild(dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s in %s: %w", pkg, dir, err)
	}
	return nil
}

// server is one running server.
type server struct {
	name string
	kind serverKind
	addr string
	cmd  *exec.Cmd
	log  string
}

// readyTimeout bounds the wait for a server to accept connections.
const readyTimeout = 10 * time.Second

// startServer starts name on a free port and waits until it accepts.
func startServer(ctx context.Context, o options, bins binaries, work, name string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	k := serverKinds[name]
	argv := k.args(o, bins[name], port)
	logPath := filepath.Join(work, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, kind: k, addr: "127.0.0.1:" + port, cmd: cmd, log: logPath}
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// freePort asks the kernel for a port that is free on 127.0.0.1 now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// waitReady polls, bounded, until s accepts connections.
func (s *server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if s.cmd.ProcessState != nil {
			break
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.log)
	return fmt.Errorf("wait for %s on %s: not accepting after %v; log:\n%s", s.name, s.addr, readyTimeout, log)
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stopTimeout bounds a graceful stop before the server is killed.
const stopTimeout = 10 * time.Second

// stop sends SIGTERM, waits a bounded time, then kills the server and any
// children it left.
func (s *server) stop() {
	children := childPIDs(s.pid())
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-done
	}
	for _, pid := range children {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
