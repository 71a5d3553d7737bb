//go:build linux

package cmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// maxCheckAnswer bounds the answer a health check reads.
const maxCheckAnswer = 64 << 10

// runHealthCheck is -check: one ping to the server's address, -listen's or,
// with -check-pid, the one that master resolved. It returns 0 when the pong
// comes back within -check-timeout, else says why and returns 1, as
// container health checks expect.
func runHealthCheck(s *settings, stdout, stderr io.Writer) int {
	addr, order, err := checkTarget(s)
	if err == nil {
		err = pingOnce(addr, order, s.checkTimeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rpcd: check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "rpcd: %s answered ping\n", addr)
	return 0
}

// checkHealthCheck validates the flags of -check.
func (o *options) checkHealthCheck() error {
	switch {
	case o.checkPid < 0:
		return fmt.Errorf("-check-pid=%d: want a pid", o.checkPid)
	case o.checkPid != 0 && !o.healthCheck:
		return errors.New("-check-pid is for -check")
	}
	return nil
}

// checkTarget is the address to dial and the byte order to ping with: those
// of s, or with -check-pid those of that master.
func checkTarget(s *settings) (string, protocol.ByteOrder, error) {
	target := &s.options
	if s.checkPid != 0 {
		m, err := masterSettings(s.checkPid, s.exts)
		if err != nil {
			return "", 0, err
		}
		target = &m.options
	}
	addr, err := checkAddr(target.listen)
	order, _ := protocol.ParseByteOrder(target.byteOrder) // checked
	return addr, order, err
}

// masterSettings resolves the settings of the rpcd master with pid as it
// resolves them itself: its command line, read from /proc, over the -config
// file it names, a relative path being taken from its working directory.
// The file is read as it is now, which is what the master applies on its
// next SIGHUP.
func masterSettings(pid int, exts []Extension) (*settings, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	cmdline, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("read command line of pid %d: %w", pid, err)
	}
	if len(cmdline) == 0 {
		return nil, fmt.Errorf("read command line of pid %d: empty, the process has exited", pid)
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	s, err := parseSettings(args[1:], exts, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("parse command line of pid %d %q: %w", pid, args, err)
	}
	if s.configFile != "" && !filepath.IsAbs(s.configFile) {
		s.configFile = filepath.Join(proc, "cwd", s.configFile)
	}
	if err := s.finish(); err != nil {
		return nil, fmt.Errorf("resolve settings of pid %d: %w", pid, err)
	}
	return s, nil
}

// checkAddr turns a listen address into one to dial: a wildcard host is
// reached on the loopback interface.
func checkAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("parse -listen: %w", err)
	}
	if port == "0" {
		return "", errors.New("-listen has port 0: give the port the server listens on")
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// pingOnce sends one ping to addr and checks that its pong echoes the params,
// all within timeout.
func pingOnce(addr string, order protocol.ByteOrder, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	token := protocol.AppendString(nil, "rpcd-check "+strconv.Itoa(os.Getpid()))
	if _, err := conn.Write(protocol.AppendRequest(nil, order, "ping", token)); err != nil {
		return fmt.Errorf("send ping to %s: %w", addr, err)
	}
	body, err := protocol.ReadFrame(conn, order, maxCheckAnswer, nil)
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", addr, err)
	}
	var resp protocol.Response
	if err := protocol.ParseResponse(body, &resp); err != nil {
		return fmt.Errorf("parse answer from %s: %w", addr, err)
	}
	if string(resp.Out) != "pong" || string(resp.Result) != string(token) {
		return fmt.Errorf("%s answered %s %s, want pong %s", addr, resp.Out, resp.Result, token)
	}
	return nil
}
