package cache

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/handlers/cache/resp"
	"github.com/rpcd/rpcd/rpc"
)

// RetryInterval is the shortest time between two connects of a loop's Redis
// connection while Redis is down; calls meanwhile answer unavailable at once.
const RetryInterval = 100 * time.Millisecond

// pipe is one event loop's Redis connection, driven by the loop itself: the
// commands of a loop turn go out in one write, and the replies complete the
// calls in the order sent. Loop goroutine only.
type pipe struct {
	s       *Store
	loop    rpc.Loop
	fd      int // -1 while not connected
	ready   bool
	gen     uint64 // counts connections, so a timer of an earlier one does nothing
	failed  error  // why the last connection broke, answered until retryAt
	retry   bool   // a connect waits for RetryInterval to pass
	enc     *resp.Conn
	dec     *resp.Conn
	in      []byte
	sent    []sentCmd // queued or sent, in order, from sent[head]
	head    int
	onReady func(rpc.Events) // onEvent, made once
	setup   int              // AUTH and SELECT replies still due
	replies uint64           // replies parsed, the watchdog's sign of progress
	watched bool             // the IO watchdog timer is set
}

// sentCmd is a call whose command is queued or sent.
type sentCmd struct {
	call *rpc.AsyncCall
	m    *methodSpec
	p    params
}

// pipeFor returns loop's pipe, creating it on the first cache method the
// loop serves.
func (s *Store) pipeFor(loop rpc.Loop) *pipe {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pipes == nil {
		s.pipes = make(map[rpc.Loop]*pipe)
	}
	if p := s.pipes[loop]; p != nil {
		return p
	}
	p := &pipe{s: s, loop: loop, fd: -1, enc: resp.NewDecoder(), dec: resp.NewDecoder()}
	p.onReady = p.onEvent
	s.pipes[loop] = p
	loop.AtClose(func() {
		p.close()
		s.mu.Lock()
		delete(s.pipes, loop)
		s.mu.Unlock()
	})
	return p
}

// asyncHandler adapts m, a method of one command, to an rpc.AsyncHandler on
// the loop's pipe.
func (s *Store) asyncHandler(m *methodSpec) func(rpc.Loop) rpc.AsyncHandler {
	return func(loop rpc.Loop) rpc.AsyncHandler {
		p := s.pipeFor(loop)
		return func(_ rpc.Loop, calls []*rpc.AsyncCall) { p.start(m, calls) }
	}
}

// start queues the commands of calls and sends them, or answers each call at
// once when its params are bad or Redis is down.
func (p *pipe) start(m *methodSpec, calls []*rpc.AsyncCall) {
	if err := p.connect(); err != nil {
		for _, c := range calls {
			c.Err = p.s.answerError(context.Background(), m.name, err)
			c.Done()
		}
		return
	}
	p.compact()
	for _, c := range calls {
		p.sent = append(p.sent, sentCmd{call: c, m: m})
		sc := &p.sent[len(p.sent)-1]
		err := m.parseCall(c.Params, &sc.p)
		if err == nil {
			err = m.send(p.enc, &sc.p)
		}
		if err != nil {
			p.sent = p.sent[:len(p.sent)-1]
			c.Err = err
			c.Done()
		}
	}
	p.flush()
}

// connect starts a connection unless one is open or under way. It returns
// the error to answer while Redis is down.
func (p *pipe) connect() error {
	opt, addr, err := p.s.target()
	switch {
	case err != nil:
		p.drop(err)
		return err
	case p.fd >= 0:
		return nil
	case p.retry:
		return p.failed
	}
	if err := p.dial(opt, addr); err != nil {
		p.drop(err)
		return err
	}
	return nil
}

// dial opens a non-blocking socket to addr, queues AUTH and SELECT ahead of
// any command, and watches for the connect to finish within DialTimeout.
func (p *pipe) dial(opt resp.Options, addr netip.AddrPort) error {
	family := unix.AF_INET
	if addr.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return fmt.Errorf("connect to redis at %s: %w", addr, os.NewSyscallError("connect", err))
	}
	p.fd, p.ready, p.failed = fd, false, nil
	p.gen++
	gen := p.gen
	if err := p.loop.Watch(fd, rpc.Writable, p.onReady); err != nil {
		p.fd = -1
		_ = unix.Close(fd)
		return err
	}
	p.queueSetup(opt)
	p.loop.After(opt.DialTimeout, func() {
		if p.gen == gen && p.fd >= 0 && !p.ready {
			p.drop(fmt.Errorf("connect to redis at %s: no answer within %v", addr, opt.DialTimeout))
		}
	})
	return nil
}

// queueSetup queues AUTH and SELECT as the connection's first commands.
func (p *pipe) queueSetup(opt resp.Options) {
	p.setup = 0
	if opt.Password != "" {
		p.enc.Begin(2)
		p.enc.ArgString("AUTH")
		p.enc.ArgString(opt.Password)
		p.setup++
	}
	if opt.DB != 0 {
		p.enc.Begin(2)
		p.enc.ArgString("SELECT")
		p.enc.ArgInt(int64(opt.DB))
		p.setup++
	}
}

// onEvent runs when the connection is writable or readable.
func (p *pipe) onEvent(ready rpc.Events) {
	if !p.ready && ready&rpc.Writable != 0 {
		// A finished non-blocking connect reports its outcome in SO_ERROR.
		errno, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = unix.Errno(errno)
		}
		if err != nil {
			p.drop(fmt.Errorf("connect to redis: %w", os.NewSyscallError("connect", err)))
			return
		}
		p.ready = true
	}
	if ready&rpc.Readable != 0 && !p.receive() {
		return
	}
	if p.fd >= 0 && p.ready {
		p.flush()
	}
}

// flush writes the queued commands, as much as the socket takes, and watches
// for room while some are left.
func (p *pipe) flush() {
	if p.fd < 0 || !p.ready {
		return
	}
	out := p.enc.Queued()
	for len(out) > 0 {
		n, err := unix.Write(p.fd, out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			p.drop(fmt.Errorf("write to redis: %w", os.NewSyscallError("write", err)))
			return
		}
		p.enc.Drop(n)
		out = p.enc.Queued()
	}
	events := rpc.Readable
	if len(out) > 0 {
		events |= rpc.Writable
	}
	if err := p.loop.Watch(p.fd, events, p.onReady); err != nil {
		p.drop(err)
		return
	}
	p.armWatchdog()
}

// receive reads what Redis sent and completes the calls whose replies are
// whole. A read that leaves room in the buffer took all there was, so it
// parses then rather than read again for EAGAIN; the level-triggered watch
// reports anything that arrives after. It reports false when the
// connection broke.
func (p *pipe) receive() bool {
	for {
		if len(p.in) == cap(p.in) {
			p.in = append(p.in, make([]byte, max(4096, len(p.in)))...)[:len(p.in)]
		}
		n, err := unix.Read(p.fd, p.in[len(p.in):cap(p.in)])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return p.parse()
		case err != nil:
			p.drop(fmt.Errorf("read from redis: %w", os.NewSyscallError("read", err)))
			return false
		case n == 0:
			p.parse()
			p.drop(errors.New("read from redis: connection closed"))
			return false
		}
		p.in = p.in[:len(p.in)+n]
		if len(p.in) < cap(p.in) {
			return p.parse()
		}
	}
}

// parse completes a call for each whole reply received, in order.
func (p *pipe) parse() bool {
	pos := 0
	for pos < len(p.in) {
		n, err := resp.ReplySize(p.in[pos:])
		if err == nil && n > 0 && p.due() == 0 && p.setup == 0 {
			err = fmt.Errorf("redis sent more than was asked: %w", resp.ErrProtocol)
		}
		if err != nil {
			p.drop(fmt.Errorf("read from redis: %w", err))
			return false
		}
		if n == 0 {
			break
		}
		p.dec.Load(p.in[pos : pos+n])
		pos += n
		p.replies++
		if p.setup > 0 {
			if err := p.setupReply(); err != nil {
				p.drop(err)
				return false
			}
			continue
		}
		p.complete()
	}
	p.in = p.in[:copy(p.in, p.in[pos:])]
	if cap(p.in) > maxKeptInput && len(p.in) == 0 {
		p.in = nil
	}
	return true
}

// maxKeptInput bounds the input buffer kept once its replies are parsed.
const maxKeptInput = 1 << 20

// setupReply checks one AUTH or SELECT reply.
func (p *pipe) setupReply() error {
	p.setup--
	r, err := p.dec.Read()
	switch {
	case err != nil:
		return err
	case r.Kind == resp.Error:
		return fmt.Errorf("set up redis connection: %s", r.Str)
	case r.Kind != resp.Status:
		return fmt.Errorf("set up redis connection: %w", resp.ErrProtocol)
	}
	return nil
}

// due is the number of calls queued or sent and not yet answered.
func (p *pipe) due() int { return len(p.sent) - p.head }

// complete answers the oldest sent call from the reply loaded in dec.
func (p *pipe) complete() {
	sc := &p.sent[p.head]
	c := sc.call
	if err := sc.m.recv(p.dec, &sc.p, &c.Reply); err != nil {
		c.Err = p.s.answerError(context.Background(), sc.m.name, err)
	} else {
		c.Reply.SetOut(sc.m.out)
	}
	*sc = sentCmd{}
	p.head++
	if p.head == len(p.sent) {
		p.sent, p.head = p.sent[:0], 0
		if cap(p.sent) > maxKeptSent {
			p.sent = nil
		}
	}
	c.Done()
}

// compact moves the calls still due to the front of sent once the answered
// ones make up half of it, so a queue that never empties stays bounded.
func (p *pipe) compact() {
	if p.head == 0 || p.head < len(p.sent)/2 {
		return
	}
	n := copy(p.sent, p.sent[p.head:])
	clear(p.sent[n:])
	p.sent, p.head = p.sent[:n], 0
}

// maxKeptSent bounds the queue of sent calls kept once all are answered.
const maxKeptSent = 4096

// armWatchdog breaks the connection when Redis sends nothing for IOTimeout
// while replies are due, so calls do not wait on a Redis that hangs.
func (p *pipe) armWatchdog() {
	if p.watched || p.due() == 0 && p.setup == 0 {
		return
	}
	p.watched = true
	gen, mark := p.gen, p.replies
	p.loop.After(p.s.ioTimeout(), func() {
		p.watched = false
		switch {
		case p.gen != gen || p.fd < 0:
		case p.replies == mark && (p.due() > 0 || p.setup > 0):
			p.drop(fmt.Errorf("read from redis: no reply within %v", p.s.ioTimeout()))
		default:
			p.armWatchdog()
		}
	})
}

// drop closes the connection and fails every call sent on it with err: none
// is retried, since a retried cache.incr could count twice. Connects wait
// RetryInterval.
func (p *pipe) drop(err error) {
	p.close()
	p.failed = err
	if !p.retry {
		p.retry = true
		p.loop.After(RetryInterval, func() { p.retry = false })
	}
	sent := p.sent[p.head:]
	p.sent, p.head = nil, 0
	for _, sc := range sent {
		sc.call.Err = p.s.answerError(context.Background(), sc.m.name, err)
		sc.call.Done()
	}
}

// close closes the connection, if open, and forgets what it held.
func (p *pipe) close() {
	if p.fd >= 0 {
		_ = p.loop.Unwatch(p.fd)
		_ = unix.Close(p.fd)
		p.fd = -1
	}
	p.ready, p.setup = false, 0
	p.in = p.in[:0]
	p.enc.Drop(len(p.enc.Queued()))
}

// Register adds the cache methods to reg: each method of one Redis command as
// an Async method, served on each worker's event loop over a Redis connection
// that loop drives, and cache.mset as a Blocking method.
func (s *Store) Register(reg *rpc.Registry) {
	for i := range methods {
		m := &methods[i]
		if m.send != nil {
			reg.RegisterAsync(m.name, s.asyncHandler(m))
		} else {
			reg.Register(m.name, rpc.Blocking, s.handler(m))
		}
	}
}
