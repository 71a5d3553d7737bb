package protocol

import (
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxDepth = 512

// syntaxError describes the first byte at which a body stops being JSON.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "malformed JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

// span locates a JSON value inside a body.
type span struct {
	start, end int
	escaped    bool // a string value holding backslash escapes
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func unexpected(b []byte, i int) *syntaxError {
	if i >= len(b) {
		return &syntaxError{i, "unexpected end of input"}
	}
	return &syntaxError{i, "unexpected " + strconv.QuoteRune(rune(b[i]))}
}

// scanValue validates the JSON value starting at b[i] (no leading space) and
// returns the index just past it.
func scanValue(b []byte, i, depth int) (int, *syntaxError) {
	if i >= len(b) {
		return i, unexpected(b, i)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{':
		return scanObject(b, i, depth+1, nil)
	case c == '[':
		return scanArray(b, i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return i, unexpected(b, i)
}

func scanLiteral(b []byte, i int, lit string) (int, *syntaxError) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, &syntaxError{i, "invalid literal"}
	}
	return i + len(lit), nil
}

func scanDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanNumber(b []byte, i int) (int, *syntaxError) {
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = scanDigits(b, i+1)
	default:
		return i, &syntaxError{start, "invalid number"}
	}
	if i < len(b) && b[i] == '.' {
		j := scanDigits(b, i+1)
		if j == i+1 {
			return j, &syntaxError{start, "invalid number"}
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := scanDigits(b, i)
		if j == i {
			return j, &syntaxError{start, "invalid number"}
		}
		i = j
	}
	return i, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// plainString marks the bytes a string holds as themselves: printable ASCII
// other than the quote and the backslash.
var plainString = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString validates the string starting at the quote b[i] and returns the
// index past its closing quote and whether it holds escapes. Control characters
// and invalid UTF-8 are rejected, so any string echoed back stays valid JSON.
func scanString(b []byte, i int) (int, bool, *syntaxError) {
	escaped := false
	for i++; i < len(b); {
		// Most strings are plain ASCII: skip it a byte per table lookup.
		for i < len(b) && plainString[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			n, err := scanEscape(b, i)
			if err != nil {
				return i, escaped, err
			}
			i += n
		case c < 0x20:
			return i, escaped, &syntaxError{i, "control character in string"}
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, escaped, &syntaxError{i, "invalid UTF-8"}
			}
			i += size
		}
	}
	return i, escaped, unexpected(b, i)
}

// scanEscape validates the escape at the backslash b[i] and returns its length.
func scanEscape(b []byte, i int) (int, *syntaxError) {
	if i+1 >= len(b) {
		return 0, unexpected(b, i+1)
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
			return 0, &syntaxError{i, "invalid \\u escape"}
		}
		return 6, nil
	}
	return 0, &syntaxError{i, "invalid escape"}
}

func scanArray(b []byte, i, depth int) (int, *syntaxError) {
	if depth > maxDepth {
		return i, &syntaxError{i, "nested too deeply"}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := scanValue(b, i, depth)
		if err != nil {
			return end, err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return i, unexpected(b, i)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, unexpected(b, i)
		}
	}
}

// member receives each key and value span of an object scanned at the top level.
type member func(key, val span)

// scanObject validates the object starting at b[i]. When visit is non-nil it is
// called for each member, in order.
func scanObject(b []byte, i, depth int, visit member) (int, *syntaxError) {
	if depth > maxDepth {
		return i, &syntaxError{i, "nested too deeply"}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, unexpected(b, i)
		}
		kend, kesc, err := scanString(b, i)
		if err != nil {
			return kend, err
		}
		key := span{i, kend, kesc}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, unexpected(b, i)
		}
		i = skipSpace(b, i+1)
		vend, err := scanValue(b, i, depth)
		if err != nil {
			return vend, err
		}
		if visit != nil {
			visit(key, span{start: i, end: vend, escaped: b[i] == '"'})
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return i, unexpected(b, i)
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, unexpected(b, i)
		}
	}
}

// keyIs reports whether the quoted key at k equals name. Keys spelled with
// escapes are decoded first, so "\u0069n" names "in" as JSON intends.
func keyIs(b []byte, k span, name string) bool {
	raw := b[k.start+1 : k.end-1]
	if !k.escaped {
		return string(raw) == name
	}
	var tmp [16]byte
	dec := unquote(tmp[:0], raw)
	return string(dec) == name
}

// unquote appends the decoded contents of a validated JSON string (without its
// quotes) to dst. Lone surrogates decode to U+FFFD.
func unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeEscapedRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// decodeEscapedRune decodes \uXXXX at s[0], joining a surrogate pair, and
// returns the rune and the bytes used.
func decodeEscapedRune(s []byte) (rune, int) {
	r := hex4(s[2:6])
	if r >= 0xd800 && r < 0xdc00 && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
		lo := hex4(s[8:12])
		if lo >= 0xdc00 && lo < 0xe000 {
			return (r-0xd800)<<10 + (lo - 0xdc00) + 0x10000, 12
		}
	}
	if r >= 0xd800 && r < 0xe000 {
		return utf8.RuneError, 6
	}
	return r, 6
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
