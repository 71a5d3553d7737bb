// Package resp is a small RESP2 client for rpcd's cache: a connection that
// queues commands in one buffer, sends them with one write, and parses the
// replies from one buffered read without allocating per reply; and a Pool of
// such connections. It never retries a command: a connection that fails is
// closed, and the next exchange dials a new one.
package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Kind is the type of a reply.
type Kind uint8

// The reply kinds of RESP2. A nil bulk string and a nil array are both Nil.
const (
	Status Kind = iota + 1 // +OK
	Error                  // -ERR message
	Int                    // :42
	Bulk                   // $3 abc
	Nil                    // $-1 or *-1
	Array                  // *2, its elements follow as replies of their own
)

// Reply is one parsed reply. Str holds a status, an error message or a bulk
// string; it points into the connection's buffer and is valid until the
// next Read or Flush. Int holds an integer, or an array's element count.
type Reply struct {
	Kind Kind
	Int  int64
	Str  []byte
}

// ErrProtocol is a reply that is not RESP2; the connection is then broken.
var ErrProtocol = errors.New("malformed RESP reply")

// maxLine bounds a reply's header line; maxBulk bounds one bulk string, as
// Redis's own proto-max-bulk-len does by default.
const (
	maxLine = 64 << 10
	maxBulk = 512 << 20
)

// Conn is one connection to Redis. Not safe for concurrent use.
type Conn struct {
	nc       net.Conn
	out      []byte // queued commands
	in       []byte // read buffer; in[start:end] not yet parsed
	start    int
	end      int
	timeout  time.Duration
	deadline time.Time
	err      error // sticky: set once the connection failed
}

// Options says how to reach Redis and how long each step may take.
type Options struct {
	Addr        string
	Password    string // AUTH on connect when set
	DB          int    // SELECT on connect when not 0
	DialTimeout time.Duration
	IOTimeout   time.Duration // bounds each exchange's write and its reads
}

// Dial connects to Redis and authenticates and selects the database as opt
// says, in one exchange.
func Dial(ctx context.Context, opt Options) (*Conn, error) {
	d := net.Dialer{Timeout: opt.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial redis: %w", err)
	}
	c := &Conn{nc: nc, timeout: opt.IOTimeout, in: make([]byte, initialBuffer)}
	n := 0
	if opt.Password != "" {
		c.Begin(2)
		c.ArgString("AUTH")
		c.ArgString(opt.Password)
		n++
	}
	if opt.DB != 0 {
		c.Begin(2)
		c.ArgString("SELECT")
		c.ArgInt(int64(opt.DB))
		n++
	}
	if err := c.handshake(ctx, n); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake sends the n queued setup commands and checks each answers OK.
func (c *Conn) handshake(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	if err := c.Flush(ctx); err != nil {
		return err
	}
	for range n {
		r, err := c.Read()
		switch {
		case err != nil:
			return err
		case r.Kind == Error:
			return fmt.Errorf("set up redis connection: %s", r.Str)
		case r.Kind != Status:
			return fmt.Errorf("set up redis connection: %w", ErrProtocol)
		}
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Err reports the error that broke the connection, nil while it is usable.
func (c *Conn) Err() error { return c.err }

// Begin queues the header of a command of n arguments, the command's name
// included; n Arg calls follow.
func (c *Conn) Begin(n int) {
	c.out = append(c.out, '*')
	c.out = strconv.AppendInt(c.out, int64(n), 10)
	c.out = append(c.out, '\r', '\n')
}

// Arg queues one argument.
func (c *Conn) Arg(b []byte) {
	c.out = append(c.out, '$')
	c.out = strconv.AppendInt(c.out, int64(len(b)), 10)
	c.out = append(c.out, '\r', '\n')
	c.out = append(c.out, b...)
	c.out = append(c.out, '\r', '\n')
}

// ArgString queues one argument.
func (c *Conn) ArgString(s string) {
	c.out = append(c.out, '$')
	c.out = strconv.AppendInt(c.out, int64(len(s)), 10)
	c.out = append(c.out, '\r', '\n')
	c.out = append(c.out, s...)
	c.out = append(c.out, '\r', '\n')
}

// ArgInt queues an integer argument in decimal.
func (c *Conn) ArgInt(n int64) {
	var digits [20]byte
	c.Arg(strconv.AppendInt(digits[:0], n, 10))
}

// Flush sends every queued command in one write. It sets the deadline of the
// write and of the reads that follow: the IO timeout from now, or ctx's
// deadline when that comes first.
func (c *Conn) Flush(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	if len(c.out) == 0 {
		return nil
	}
	c.deadline = time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	if err := c.nc.SetDeadline(c.deadline); err != nil {
		return c.fail(fmt.Errorf("set redis deadline: %w", err))
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		return c.fail(fmt.Errorf("write to redis: %w", err))
	}
	return nil
}

// maxKeptBuffer bounds the buffers a connection keeps between exchanges, so
// one large value does not pin its memory for the connection's life.
const (
	initialBuffer = 4096
	maxKeptBuffer = 1 << 20
)

// Discard drops the commands queued since the last Flush and shrinks buffers
// that one large exchange grew. Bytes received and not parsed break the
// connection: they answer nothing that was asked.
func (c *Conn) Discard() {
	c.out = c.out[:0]
	if cap(c.out) > maxKeptBuffer {
		c.out = nil
	}
	if c.start != c.end {
		c.fail(fmt.Errorf("redis sent more than was asked: %w", ErrProtocol))
	}
	c.start, c.end = 0, 0
	if len(c.in) > maxKeptBuffer {
		c.in = make([]byte, initialBuffer)
	}
}

func (c *Conn) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}

// Read parses the next reply. An error reply from Redis is a Reply of kind
// Error, not an error: the connection stays usable. An array's elements are
// read by the calls that follow. Any error returned breaks the connection.
func (c *Conn) Read() (Reply, error) {
	if c.err != nil {
		return Reply{}, c.err
	}
	line, err := c.line()
	if err != nil {
		return Reply{}, c.fail(err)
	}
	r, n, err := parseHeader(line)
	if err != nil {
		return Reply{}, c.fail(err)
	}
	if r.Kind == Bulk {
		if r.Str, err = c.take(n); err != nil {
			return Reply{}, c.fail(err)
		}
	}
	return r, nil
}

// parseHeader parses a reply's first line, without its CRLF. For a bulk
// string it returns the length to take next.
func parseHeader(line []byte) (Reply, int, error) {
	if len(line) == 0 {
		return Reply{}, 0, ErrProtocol
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return Reply{Kind: Status, Str: body}, 0, nil
	case '-':
		return Reply{Kind: Error, Str: body}, 0, nil
	case ':':
		n, ok := parseInt(body)
		if !ok {
			return Reply{}, 0, ErrProtocol
		}
		return Reply{Kind: Int, Int: n}, 0, nil
	case '$', '*':
		n, ok := parseInt(body)
		switch {
		case !ok || n < -1 || n > maxBulk:
			return Reply{}, 0, ErrProtocol
		case n == -1:
			return Reply{Kind: Nil}, 0, nil
		case line[0] == '*':
			return Reply{Kind: Array, Int: n}, 0, nil
		}
		return Reply{Kind: Bulk}, int(n), nil
	}
	return Reply{}, 0, ErrProtocol
}

// parseInt parses a RESP integer: an optional minus and 1 to 19 digits.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + uint64(d-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return int64(-n), true // -(1<<63) wraps to itself
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// line returns the next line without its CRLF, reading as needed.
func (c *Conn) line() ([]byte, error) {
	scanned := c.start
	for {
		for i := scanned; i+1 < c.end; i++ {
			if c.in[i] == '\r' {
				if c.in[i+1] != '\n' {
					return nil, ErrProtocol
				}
				line := c.in[c.start:i]
				c.start = i + 2
				return line, nil
			}
		}
		if c.end-c.start > maxLine {
			return nil, ErrProtocol
		}
		scanned = max(c.start, c.end-1)
		shift, err := c.fill(c.end - c.start + 1)
		if err != nil {
			return nil, err
		}
		scanned -= shift
	}
}

// take returns the next n bytes, which must be followed by CRLF.
func (c *Conn) take(n int) ([]byte, error) {
	for c.end-c.start < n+2 {
		if _, err := c.fill(n + 2); err != nil {
			return nil, err
		}
	}
	b := c.in[c.start : c.start+n]
	if c.in[c.start+n] != '\r' || c.in[c.start+n+1] != '\n' {
		return nil, ErrProtocol
	}
	c.start += n + 2
	return b, nil
}

// fill reads more bytes, first making room for need unparsed bytes in all.
// Bytes handed out by earlier reads move or are overwritten. It returns how
// far the unparsed bytes moved towards the front.
func (c *Conn) fill(need int) (int, error) {
	if c.nc == nil {
		return 0, errIncomplete // a decoder has only the bytes it was given
	}
	shift := 0
	if need > len(c.in)-c.start {
		if need > len(c.in) {
			grown := make([]byte, max(need, 2*len(c.in)))
			c.end = copy(grown, c.in[c.start:c.end])
			c.in = grown
		} else {
			c.end = copy(c.in, c.in[c.start:c.end])
		}
		shift, c.start = c.start, 0
	} else if c.start == c.end {
		shift, c.start, c.end = c.start, 0, 0
	}
	n, err := c.nc.Read(c.in[c.end:])
	c.end += n
	if n > 0 {
		return shift, nil
	}
	if err == nil {
		err = errors.New("read from redis: no bytes and no error")
	}
	return shift, fmt.Errorf("read from redis: %w", err)
}
