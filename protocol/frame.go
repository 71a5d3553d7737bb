package protocol

import (
	"errors"
	"fmt"
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

// Split finds the first complete frame at the start of buf without copying. body
// aliases buf and n counts the header and body bytes consumed. When buf does not
// yet hold a whole frame, Split returns n == 0 and a nil error. A bad length prefix
// is reported as soon as its four bytes are present.
func Split(buf []byte, order ByteOrder, max uint32) (body []byte, n int, err error) {
	if len(buf) < HeaderSize {
		return nil, 0, nil
	}
	size := order.Len(buf)
	if size == 0 {
		return nil, 0, ErrEmptyFrame
	}
	if size > max {
		return nil, 0, &FrameTooLargeError{Length: size, Max: max}
	}
	end := HeaderSize + int(size)
	if len(buf) < end {
		return nil, 0, nil
	}
	return buf[HeaderSize:end:end], end, nil
}

// Missing reports how many more bytes complete the first frame in buf: while the
// header is partial, the rest of the header; then the rest of the body. It is 0
// when buf starts with a complete frame.
func Missing(buf []byte, order ByteOrder) int {
	if len(buf) < HeaderSize {
		return HeaderSize - len(buf)
	}
	end := HeaderSize + int(order.Len(buf))
	if len(buf) >= end {
		return 0
	}
	return end - len(buf)
}
