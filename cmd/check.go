//go:build linux

package cmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/rpcd/rpcd/protocol"
)

// maxCheckAnswer bounds the answer a health check reads.
const maxCheckAnswer = 64 << 10

// runHealthCheck is -check: one ping to the -listen address. It returns 0
// when the pong comes back within -check-timeout, else says why and returns 1,
// as container health checks expect.
func runHealthCheck(opts *options, stdout, stderr io.Writer) int {
	addr, err := checkAddr(opts.listen)
	if err == nil {
		order, _ := protocol.ParseByteOrder(opts.byteOrder)
		err = pingOnce(addr, order, opts.checkTimeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rpcd: check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "rpcd: %s answered ping\n", addr)
	return 0
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
