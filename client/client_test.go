//go:build linux

package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
	"github.com/rpcd/rpcd/worker"
	"github.com/rpcd/rpcd/worker/workertest"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 10 * time.Second

// gate holds the "hold" method until released.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func testRegistry(g *gate) *rpc.Registry {
	reg := rpc.NewRegistry()
	reg.Register("ping", rpc.Inline, func(_ context.Context, params []byte, rep *rpc.Reply) error {
		rep.SetOut("pong")
		rep.SetRaw(params)
		return nil
	})
	reg.Register("hold", rpc.Blocking, func(_ context.Context, params []byte, rep *rpc.Reply) error {
		g.started <- struct{}{}
		<-g.release
		rep.SetOut("held")
		rep.SetRaw(params)
		return nil
	})
	return reg
}

// serve runs a worker on 127.0.0.1 in this process and returns its address.
func serve(t *testing.T, cfg worker.Config) (string, *gate) {
	t.Helper()
	g := &gate{started: make(chan struct{}, 100), release: make(chan struct{})}
	addr := workertest.Start(t, cfg, testRegistry(g))
	// Runs before the worker's shutdown: held handlers must be let go first.
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	})
	return addr, g
}

func dialT(t *testing.T, addr string, opts Options) *Client {
	t.Helper()
	c, err := Dial(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCall(t *testing.T) {
	tests := []struct {
		name       string
		order      protocol.ByteOrder
		method     string
		params     string
		wantOut    string
		wantResult string
		wantCode   string
	}{
		{name: "ping", method: "ping", params: `{"a": [1, 2.50]}`, wantOut: "pong", wantResult: `{"a": [1, 2.50]}`},
		{name: "nil params", method: "ping", wantOut: "pong", wantResult: `null`},
		{name: "big endian", order: protocol.BigEndian, method: "ping", params: `"big"`, wantOut: "pong", wantResult: `"big"`},
		{name: "unknown method", method: "nope", wantCode: protocol.CodeUnknownMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := serve(t, worker.Config{ByteOrder: tt.order})
			c := dialT(t, addr, Options{ByteOrder: tt.order})
			var params []byte
			if tt.params != "" {
				params = []byte(tt.params)
			}
			out, result, err := c.Call(context.Background(), tt.method, params)
			if tt.wantCode != "" {
				var ce *Error
				var pe *protocol.Error
				if !errors.As(err, &ce) || !errors.As(err, &pe) || pe.Code != tt.wantCode {
					t.Fatalf("err = %v, want a *client.Error with code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil || out != tt.wantOut || string(result) != tt.wantResult {
				t.Fatalf("got %s %s %v, want %s %s", out, result, err, tt.wantOut, tt.wantResult)
			}
		})
	}
}

// Many goroutines share one client; every answer is matched to its call.
func TestConcurrentCallsMatchAnswers(t *testing.T) {
	addr, _ := serve(t, worker.Config{})
	c := dialT(t, addr, Options{Conns: 3})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				want := fmt.Sprintf(`"g%d-%d"`, g, i)
				_, result, err := c.Call(context.Background(), "ping", []byte(want))
				if err != nil || string(result) != want {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d of 6400 calls got a wrong answer or an error", n)
	}
}

// A call abandoned by its context leaves its answer slot in place: the next
// call on the connection gets its own answer, not the abandoned one.
func TestCancelledCallKeepsOrder(t *testing.T) {
	addr, g := serve(t, worker.Config{})
	c := dialT(t, addr, Options{Conns: 1})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Call(ctx, "hold", []byte(`"abandoned"`))
		errc <- err
	}()
	<-g.started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v", err)
	}
	close(g.release)
	for i := range 3 {
		want := fmt.Sprint(i)
		if _, result, err := c.Call(context.Background(), "ping", []byte(want)); err != nil || string(result) != want {
			t.Fatalf("ping %d after the cancelled call: %s, %v", i, result, err)
		}
	}
}

// A call whose deadline has passed before its request is written fails
// alone: the connection, and the calls waiting on it, carry on.
func TestExpiredCallKeepsConnection(t *testing.T) {
	addr, g := serve(t, worker.Config{})
	c := dialT(t, addr, Options{Conns: 1})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.Call(context.Background(), "hold", []byte(`"kept"`))
		errc <- err
	}()
	<-g.started
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, _, err := c.Call(expired, "ping", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired call returned %v, want a deadline error", err)
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatalf("call in flight beside the expired one returned %v", err)
	}
}

func TestTimeout(t *testing.T) {
	addr, g := serve(t, worker.Config{})
	c := dialT(t, addr, Options{Conns: 1, Timeout: 50 * time.Millisecond})
	_, _, err := c.Call(context.Background(), "hold", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held call returned %v, want a deadline error", err)
	}
	close(g.release)
	if _, result, err := c.Call(context.Background(), "ping", []byte(`1`)); err != nil || string(result) != "1" {
		t.Fatalf("ping after the timeout: %s, %v", result, err)
	}
}

// A connection the server closed while idle is replaced without resending
// anything: the next call finds it dead before writing.
func TestReconnectsAfterServerClose(t *testing.T) {
	addr, _ := serve(t, worker.Config{IdleTimeout: 50 * time.Millisecond})
	c := dialT(t, addr, Options{Conns: 1})
	s := (*c.eps.Load())[0].slots[0]
	first := s.sess
	deadline := time.Now().Add(waitLimit)
	for !first.isDead() {
		if time.Now().After(deadline) {
			t.Fatal("the client never saw the idle close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, result, err := c.Call(context.Background(), "ping", []byte(`"again"`)); err != nil || string(result) != `"again"` {
		t.Fatalf("call after the close: %s, %v", result, err)
	}
	if s.sess == first {
		t.Fatal("the call did not use a new connection")
	}
}

// fakeServer reads one request per connection; on the first connection it
// then closes without answering, on later ones it answers pong. It answers
// rpcd.hello as a server without the goodbye does, and does not count it.
type fakeServer struct {
	l     net.Listener
	reads atomic.Int64
}

func startFake(t *testing.T) *fakeServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{l: l}
	t.Cleanup(func() { l.Close() })
	go f.accept()
	return f
}

func (f *fakeServer) accept() {
	for n := 0; n < 20; n++ {
		nc, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.serveOne(nc, n == 0)
	}
}

func (f *fakeServer) serveOne(nc net.Conn, drop bool) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitLimit))
	var req protocol.Request
	for {
		body, err := protocol.ReadFrame(nc, protocol.LittleEndian, 1<<20, nil)
		if err != nil || protocol.ParseRequest(body, &req) != nil {
			return
		}
		if string(req.Method) != helloMethod {
			break
		}
		unknown := protocol.Errorf(protocol.CodeUnknownMethod, "unknown method %q", req.Method)
		if _, err := nc.Write(protocol.AppendError(nil, protocol.LittleEndian, unknown)); err != nil {
			return
		}
	}
	f.reads.Add(1)
	if drop {
		return
	}
	_, _ = nc.Write(protocol.AppendResponse(nil, protocol.LittleEndian, "pong", req.Params))
}

func TestNoResendUnlessIdempotent(t *testing.T) {
	tests := []struct {
		name       string
		opts       []CallOption
		wantReads  int64
		wantMaybe  bool
		wantResult string
	}{
		{name: "not idempotent", wantReads: 1, wantMaybe: true},
		{name: "idempotent", opts: []CallOption{Idempotent()}, wantReads: 2, wantResult: `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t)
			c := dialT(t, f.l.Addr().String(), Options{Conns: 1})
			_, result, err := c.Call(context.Background(), "ping", []byte(`"x"`), tt.opts...)
			if got := errors.Is(err, ErrMaybeSent); got != tt.wantMaybe {
				t.Fatalf("err = %v, want ErrMaybeSent %v", err, tt.wantMaybe)
			}
			if !tt.wantMaybe && (err != nil || string(result) != tt.wantResult) {
				t.Fatalf("got %s, %v", result, err)
			}
			if n := f.reads.Load(); n != tt.wantReads {
				t.Fatalf("server read the request %d times, want %d", n, tt.wantReads)
			}
		})
	}
}

func TestClosedClient(t *testing.T) {
	addr, _ := serve(t, worker.Config{})
	c := dialT(t, addr, Options{})
	c.Close()
	if _, _, err := c.Call(context.Background(), "ping", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call on a closed client: %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial(addr, Options{DialTimeout: time.Second}); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}
