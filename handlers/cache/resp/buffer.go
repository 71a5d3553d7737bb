package resp

import "errors"

// errIncomplete is what a Conn made by NewDecoder reads past its bytes.
var errIncomplete = errors.New("redis reply is incomplete")

// NewDecoder returns a Conn with no connection: it parses the replies in the
// bytes Load gives it, and queues commands that Queued hands out, for a caller
// that does its own non-blocking I/O.
func NewDecoder() *Conn { return &Conn{} }

// Load makes b, which must hold whole replies (see ReplySize), the bytes the
// next Reads parse. The Reply strings point into b.
func (c *Conn) Load(b []byte) {
	c.in, c.start, c.end, c.err = b, 0, len(b), nil
}

// Queued returns the commands queued since the last Drop.
func (c *Conn) Queued() []byte { return c.out }

// Drop forgets the first n queued bytes, once the caller has sent them.
func (c *Conn) Drop(n int) {
	c.out = c.out[:copy(c.out, c.out[n:])]
	if len(c.out) == 0 && cap(c.out) > maxKeptBuffer {
		c.out = nil
	}
}

// ReplySize returns the size of the whole reply at the start of b, an array
// with all its elements; 0 when b does not hold it all yet. An error means b
// is not RESP2.
func ReplySize(b []byte) (int, error) {
	pos, want := 0, 1
	for want > 0 {
		end := -1
		for i := pos; i+1 < len(b); i++ {
			if b[i] == '\r' {
				if b[i+1] != '\n' {
					return 0, ErrProtocol
				}
				end = i
				break
			}
		}
		if end < 0 {
			if len(b)-pos > maxLine {
				return 0, ErrProtocol
			}
			return 0, nil
		}
		r, n, err := parseHeader(b[pos:end])
		if err != nil {
			return 0, err
		}
		pos = end + 2
		want--
		switch r.Kind {
		case Bulk:
			if len(b)-pos < n+2 {
				return 0, nil
			}
			pos += n + 2
		case Array:
			want += int(r.Int)
		}
	}
	return pos, nil
}
