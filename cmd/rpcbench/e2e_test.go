package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/protocol"
)

// testServer is a minimal goroutine-per-connection server speaking the protocol.
type testServer struct {
	order      protocol.ByteOrder
	corrupt    bool // answer ping with a result other than the params
	closeAfter int  // hang up after this many answers on a connection; 0: never

	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

// start listens on 127.0.0.1:0 and serves until the test ends.
func (s *testServer) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.conns = ln, map[net.Conn]bool{}
	s.wg.Go(s.acceptLoop)
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

func (s *testServer) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[conn] = true
		s.mu.Unlock()
		s.wg.Go(func() { s.serveConn(conn) })
	}
}

func (s *testServer) serveConn(conn net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	var in, out []byte
	buf := make([]byte, 64<<10)
	answered := 0
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		in = append(in, buf[:n]...)
		out = out[:0]
		used := 0
		for {
			body, size, err := protocol.Split(in[used:], s.order, protocol.DefaultMaxFrame)
			if err != nil || size == 0 {
				break
			}
			used += size
			out = s.answer(out, body)
			if answered++; answered == s.closeAfter {
				conn.Write(out)
				return
			}
		}
		in = append(in[:0], in[used:]...)
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

func (s *testServer) answer(out, body []byte) []byte {
	var req protocol.Request
	if err := protocol.ParseRequest(body, &req); err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			perr = protocol.Errorf(protocol.CodeInternal, "%v", err)
		}
		return protocol.AppendError(out, s.order, perr)
	}
	if string(req.Method) != "ping" {
		return protocol.AppendError(out, s.order,
			protocol.Errorf(protocol.CodeUnknownMethod, "unknown method %q", req.Method))
	}
	result := req.Params
	if s.corrupt {
		result = []byte(`"something else"`)
	}
	return protocol.AppendResponse(out, s.order, "pong", result)
}

func TestRunAgainstServer(t *testing.T) {
	tests := []struct {
		name     string
		server   *testServer // nil: nothing listens
		args     []string
		wantExit int
		check    func(t *testing.T, r report)
	}{
		{
			name:   "pipelined ping",
			server: &testServer{},
			args:   []string{"-c", "4", "-depth", "16", "-d", "0", "-n", "2000", "-params", `{"a": [1, "<&>"]}`},
			check: func(t *testing.T, r report) {
				if r.Requests != 2000 || r.LatencyP50US <= 0 || r.LatencyMaxUS < r.LatencyP99US {
					t.Errorf("requests %d, p50 %vµs, p99 %vµs, max %vµs; want 2000 requests and ordered figures",
						r.Requests, r.LatencyP50US, r.LatencyP99US, r.LatencyMaxUS)
				}
			},
		},
		{
			name:   "big endian",
			server: &testServer{order: protocol.BigEndian},
			args:   []string{"-byteorder", "big", "-c", "2", "-depth", "4", "-d", "0", "-n", "300"},
			check: func(t *testing.T, r report) {
				if r.Requests != 300 || !r.clean() {
					t.Errorf("report %+v, want 300 requests and a clean run", r)
				}
			},
		},
		{
			name:   "bounded by duration with warmup",
			server: &testServer{},
			args:   []string{"-c", "2", "-d", "200ms", "-warmup", "100ms"},
			check: func(t *testing.T, r report) {
				if r.Requests == 0 || r.Seconds < 0.2 {
					t.Errorf("requests %d over %vs, want some over at least 0.2s", r.Requests, r.Seconds)
				}
			},
		},
		{
			name:     "unknown method",
			server:   &testServer{},
			args:     []string{"-in", "nope", "-d", "0", "-n", "100"},
			wantExit: 1,
			check: func(t *testing.T, r report) {
				if r.ErrorAnswers != 100 || r.ErrorCodes[protocol.CodeUnknownMethod] != 100 {
					t.Errorf("error answers %d %v, want 100 unknown_method", r.ErrorAnswers, r.ErrorCodes)
				}
			},
		},
		{
			name:     "wrong echo",
			server:   &testServer{corrupt: true},
			args:     []string{"-d", "0", "-n", "100", "-depth", "3"},
			wantExit: 1,
			check: func(t *testing.T, r report) {
				if r.Mismatches != 100 || r.FirstMismatch == "" {
					t.Errorf("mismatches %d (first %q), want 100", r.Mismatches, r.FirstMismatch)
				}
			},
		},
		{
			name:     "server hangs up",
			server:   &testServer{closeAfter: 10},
			args:     []string{"-c", "2", "-d", "0", "-n", "200"},
			wantExit: 1,
			check: func(t *testing.T, r report) {
				if r.Reconnects == 0 || r.ConnErrors == 0 || r.Requests+r.Lost != 200 {
					t.Errorf("reconnects %d, conn errors %d, requests %d + lost %d; want reconnects, errors, 200 in all",
						r.Reconnects, r.ConnErrors, r.Requests, r.Lost)
				}
			},
		},
		{
			name:     "connection refused",
			args:     []string{"-c", "2", "-d", "0", "-n", "100"},
			wantExit: 1,
			check: func(t *testing.T, r report) {
				if r.Requests != 0 || r.ConnErrorKinds["refused"] != 2*maxFailures {
					t.Errorf("requests %d, conn errors %v; want none answered, %d refused",
						r.Requests, r.ConnErrorKinds, 2*maxFailures)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tcptest.FreeAddr(t)
			if tt.server != nil {
				addr = tt.server.start(t)
			}
			tt.check(t, runReport(t, tt.wantExit, append([]string{"-addr", addr, "-json"}, tt.args...)...))
		})
	}
}

// runReport runs rpcbench with args, which include -json, and returns its
// report; an exit status other than want fails the test.
func runReport(t *testing.T, want int, args ...string) report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if got := run(args, &stdout, &stderr); got != want {
		t.Errorf("exit status %d, want %d; stderr:\n%s", got, want, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode report %q: %v", stdout.String(), err)
	}
	return r
}

func TestRunReportsServerCPU(t *testing.T) {
	addr := (&testServer{}).start(t)
	// The test server runs in this process, so this process is the server pid.
	r := runReport(t, 0, "-addr", addr, "-json", "-pid", strconv.Itoa(os.Getpid()), "-d", "0", "-n", "500")
	if r.Server == nil || r.Server.PID != os.Getpid() || r.Server.Procs < 1 {
		t.Errorf("server figures %+v, want this process", r.Server)
	}
}
