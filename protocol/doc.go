// Package protocol encodes and decodes rpcd's wire format. It is pure: bytes in,
// bytes out, no sockets, no logging, and no allocation on the hot paths.
//
// # Framing
//
// Every message is a frame: a 4-byte unsigned length followed by exactly that many
// body bytes. The length is little-endian by default, which is what Python's
// struct.pack("I", n) gives on x86; BigEndian serves clients that write
// int.to_bytes(4, "big"). A zero length is a framing error (ErrEmptyFrame), and so is
// a length over the receiver's maximum (*FrameTooLargeError); Split reports both
// before any body byte is needed, so no advertised length is ever allocated.
// Split, FrameSize and Missing serve a reader that assembles frames in a buffer
// of its own; ReadFrame reads one frame from a blocking io.Reader, and
// AppendFrame frames a body as is.
//
// # Bodies
//
// A request body is a JSON object:
//
//	{"in": "ping", "params": "ireader 0"}
//
// "in" names the method and must be a string; "params" may be any JSON value and
// is null when absent. Other members are ignored; a repeated member's last value
// wins. ParseRequest validates the whole body and returns params as the exact bytes
// the client sent, so 12345678901234567890, 3.5 or "\u00e9" reach handlers unchanged.
//
// A successful answer is
//
//	{"out":"pong","result":"ireader 0"}
//
// and a failed one carries out "error" and a code:
//
//	{"out":"error","result":{"code":"unknown_method","message":"no method \"pnig\""}}
//
// The codes are the Code* constants. Answers carry no request id: a server answers
// the requests of one connection in the order it received them.
package protocol
