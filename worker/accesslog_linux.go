package worker

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
)

// The access log's side of the loop (Config.AccessLog). Everything here
// runs on the loop goroutine; with Config.AccessLog nil it does nothing.

// accessState is the loop's bookkeeping for the access log.
type accessState struct {
	peers []netip.AddrPort // client addresses, by descriptor
	rec   AccessRecord     // reused for each record
}

// notePeer remembers the address of the client on fd.
func (w *Worker) notePeer(fd int, sa unix.Sockaddr) {
	if w.cfg.AccessLog == nil {
		return
	}
	a := &w.meter.access
	if fd >= len(a.peers) {
		a.peers = append(a.peers, make([]netip.AddrPort, max(fd+1, 2*len(a.peers))-len(a.peers))...)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		a.peers[fd] = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a.peers[fd] = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	default:
		a.peers[fd] = netip.AddrPort{}
	}
}

// logAccess hands the access log the record of an answer on fd made at
// loop clock now.
func (w *Worker) logAccess(fd int32, method []byte, code int, now, nanos int64, in, out int) {
	a := &w.meter.access
	r := &a.rec
	r.Time = w.epoch.Add(time.Duration(now))
	r.Peer = netip.AddrPort{}
	if int(fd) < len(a.peers) {
		r.Peer = a.peers[fd]
	}
	r.Method, r.Code, r.Duration, r.BytesIn, r.BytesOut = method, code, time.Duration(nanos), in, out
	if !w.cfg.AccessLog.Log(r) {
		w.cfg.Metrics.Add(metrics.AccessDropped, 1)
	}
	r.Method = nil
}

// logPooled logs a blocking or batch call's answer, routed to c.
func (w *Worker) logPooled(c *conn, r *result) {
	if w.cfg.AccessLog != nil {
		w.logAccess(c.fd, r.method, int(r.code), w.now, w.now-r.readAt, r.in, len(r.frame))
	}
}

// logTimeout logs the timeout answer of size bytes made for e on c.
func (w *Worker) logTimeout(c *conn, e deadlineEntry, size int) {
	if w.cfg.AccessLog != nil {
		readAt := e.at - int64(w.cfg.HandlerTimeout)
		w.logAccess(c.fd, e.method, metrics.CodeTimeout, w.now, w.now-readAt, e.in, size)
	}
}
