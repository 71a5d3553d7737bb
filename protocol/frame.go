package protocol

import (
	"errors"
	"fmt"
	"io"
)

// HeaderSize is the size of a frame's length prefix.
const HeaderSize = 4

// DefaultMaxFrame is the largest body a server accepts unless configured otherwise.
const DefaultMaxFrame = 1 << 20

// ByteOrder is the byte order of the length prefix.
type ByteOrder uint8

const (
	// LittleEndian is struct.pack("I") on x86, and the default.
	LittleEndian ByteOrder = iota
	// BigEndian is network order, as int.to_bytes(4, "big") writes it.
	BigEndian
)

// ParseByteOrder accepts "little" or "big".
func ParseByteOrder(s string) (ByteOrder, error) {
	switch s {
	case "little":
		return LittleEndian, nil
	case "big":
		return BigEndian, nil
	}
	return 0, fmt.Errorf("byte order %q: want little or big", s)
}

func (o ByteOrder) String() string {
	if o == BigEndian {
		return "big"
	}
	return "little"
}

// PutLen writes n into the first four bytes of b.
func (o ByteOrder) PutLen(b []byte, n uint32) {
	_ = b[3]
	if o == BigEndian {
		b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return
	}
	b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
}

// Len reads a length from the first four bytes of b.
func (o ByteOrder) Len(b []byte) uint32 {
	_ = b[3]
	if o == BigEndian {
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// ErrEmptyFrame reports a frame whose length prefix is zero.
var ErrEmptyFrame = errors.New("frame length is zero")

// FrameTooLargeError reports a length prefix over the receiver's maximum.
type FrameTooLargeError struct {
	Length, Max uint32
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame length %d exceeds the maximum of %d bytes", e.Length, e.Max)
}

// checkLen reports a length prefix a receiver must refuse.
func checkLen(size, max uint32) error {
	if size == 0 {
		return ErrEmptyFrame
	}
	if size > max {
		return &FrameTooLargeError{Length: size, Max: max}
	}
	return nil
}

// Split finds the first complete frame at the start of buf without copying. body
// aliases buf and n counts the header and body bytes consumed. When buf does not
// yet hold a whole frame, Split returns n == 0 and a nil error. A bad length prefix
// is reported as soon as its four bytes are present.
func Split(buf []byte, order ByteOrder, max uint32) (body []byte, n int, err error) {
	if len(buf) < HeaderSize {
		return nil, 0, nil
	}
	if err := checkLen(order.Len(buf), max); err != nil {
		return nil, 0, err
	}
	end := FrameSize(buf, order)
	if len(buf) < end {
		return nil, 0, nil
	}
	return buf[HeaderSize:end:end], end, nil
}

// FrameSize reports how long the frame starting buf is, header included, as
// far as buf tells: HeaderSize while the header itself is partial.
func FrameSize(buf []byte, order ByteOrder) int {
	if len(buf) < HeaderSize {
		return HeaderSize
	}
	return HeaderSize + int(order.Len(buf))
}

// Missing reports how many more bytes complete the first frame in buf: while the
// header is partial, the rest of the header; then the rest of the body. It is 0
// when buf starts with a complete frame.
func Missing(buf []byte, order ByteOrder) int {
	return max(FrameSize(buf, order)-len(buf), 0)
}

// AppendFrame appends a frame holding body to dst.
func AppendFrame(dst []byte, order ByteOrder, body []byte) []byte {
	dst, start := beginFrame(dst)
	return endFrame(append(dst, body...), start, order)
}

// ReadFrame reads one frame from r and returns its body. The body is read into
// buf when it fits there (the header too, so a buf of HeaderSize or more
// bytes makes a read that allocates nothing), else into a new slice; it is
// valid until buf is reused. A bad length prefix is ErrEmptyFrame or a
// *FrameTooLargeError, found before any body byte is read or allocated. A
// stream that ends cleanly before the frame is io.EOF; one that ends inside
// it is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, order ByteOrder, max uint32, buf []byte) ([]byte, error) {
	if cap(buf) < HeaderSize {
		buf = make([]byte, HeaderSize)
	}
	header := buf[:HeaderSize]
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	size := order.Len(header)
	if err := checkLen(size, max); err != nil {
		return nil, err
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	body := buf[:size]
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}
