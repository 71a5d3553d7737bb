package protocol

import "unicode/utf8"

// beginFrame reserves a length prefix at the end of dst.
func beginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// endFrame fills in the length prefix reserved at start.
func endFrame(dst []byte, start int, order ByteOrder) []byte {
	order.PutLen(dst[start:], uint32(len(dst)-start-HeaderSize))
	return dst
}

// AppendResponse appends a whole answer frame {"out":out,"result":result} to
// dst. result must be valid JSON; it is copied as is.
func AppendResponse(dst []byte, order ByteOrder, out string, result []byte) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, `{"out":`...)
	dst = AppendString(dst, out)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	dst = append(dst, '}')
	return endFrame(dst, start, order)
}

// AppendError appends a whole error answer frame for e.
func AppendError(dst []byte, order ByteOrder, e *Error) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, `{"out":"error","result":{"code":`...)
	dst = AppendString(dst, e.Code)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, e.Message)
	dst = append(dst, "}}"...)
	return endFrame(dst, start, order)
}

// AppendRequest appends a whole request frame {"in":method,"params":params} to
// dst. params must be valid JSON; nil omits the member.
func AppendRequest(dst []byte, order ByteOrder, method string, params []byte) []byte {
	dst, start := beginFrame(dst)
	dst = append(dst, `{"in":`...)
	dst = AppendString(dst, method)
	if params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	dst = append(dst, '}')
	return endFrame(dst, start, order)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
