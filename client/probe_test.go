//go:build linux

package client

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/protocol"
)

// Only a pong that echoes the ping's params makes a probe pass: a goodbye
// from a draining host, or a pong with other params, fails it.
func TestPingWantsItsEcho(t *testing.T) {
	tests := []struct {
		name   string
		answer func(params []byte) []byte
		ok     bool
	}{
		{"echo", func(p []byte) []byte { return protocol.AppendResponse(nil, protocol.LittleEndian, "pong", p) }, true},
		{"goodbye", func([]byte) []byte { return protocol.AppendResponse(nil, protocol.LittleEndian, goodbyeOut, nil) }, false},
		{"other params", func([]byte) []byte {
			return protocol.AppendResponse(nil, protocol.LittleEndian, "pong", []byte(`"x"`))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			go func() {
				var req protocol.Request
				body, err := protocol.ReadFrame(server, protocol.LittleEndian, 1<<20, nil)
				if err != nil || protocol.ParseRequest(body, &req) != nil {
					return
				}
				server.Write(tt.answer(req.Params)) //nolint:errcheck // ping sees the outcome
			}()
			opts := Options{}.withDefaults()
			if err := ping(client, &opts); (err == nil) != tt.ok {
				t.Fatalf("ping = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// An ejection that lands while a stall probe runs still gets the endpoint
// probed until well: it does not stay ejected for good.
func TestEjectedDuringStallProbe(t *testing.T) {
	var silent atomic.Bool
	silent.Store(true)
	heldOne := make(chan struct{})
	var once sync.Once
	hold := tcptest.Silent(t)
	l := tcptest.Serve(t, func(nc net.Conn) {
		if silent.Load() {
			once.Do(func() { close(heldOne) })
			hold(nc)
			return
		}
		(&fakeServer{}).serveOne(nc, false)
	})
	up1, up2 := startHost(t), startHost(t)
	c := newT(t, Options{ProbeTimeout: 200 * time.Millisecond, Resolver: discovery.Static(
		discovery.Endpoint{Addr: l.String()}, discovery.Endpoint{Addr: up1.addr}, discovery.Endpoint{Addr: up2.addr})})
	var e *endpoint
	waitfor.Until(t, waitLimit, "three endpoints", func() bool {
		for _, o := range *c.eps.Load() {
			if o.addr == l.String() {
				e = o
			}
		}
		return e != nil
	})
	e.checkStalled()
	<-heldOne // the stall probe waits on a host that does not answer
	e.eject(errors.New("test ejection"))
	if !e.ejected.Load() {
		t.Fatal("not ejected")
	}
	silent.Store(false)
	waitfor.Until(t, waitLimit, "the endpoint back in the picks", func() bool { return !e.ejected.Load() })
}

// refreshCounter is a static list that counts the calls to Refresh.
type refreshCounter struct {
	discovery.Resolver
	refreshes atomic.Int32
}

func (r *refreshCounter) Refresh() { r.refreshes.Add(1) }

// A refused dial asks the resolver for a fresh list: the host may have
// moved.
func TestRefusedDialRefreshes(t *testing.T) {
	down := tcptest.FreeAddr(t)
	up1, up2 := startHost(t), startHost(t)
	res := &refreshCounter{Resolver: discovery.Static(
		discovery.Endpoint{Addr: down}, discovery.Endpoint{Addr: up1.addr}, discovery.Endpoint{Addr: up2.addr})}
	c := newT(t, Options{Resolver: res})
	if failed, err := closedLoop(c, 2, 50, "ping"); failed != 0 {
		t.Fatalf("%d calls failed, first: %v", failed, err)
	}
	waitfor.Until(t, waitLimit, "a refresh after the refused dial", func() bool { return res.refreshes.Load() > 0 })
}
