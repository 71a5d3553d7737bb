package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rpcd/rpcd/protocol"
)

// Limits that keep one call bounded.
const (
	MaxKeys = 1000            // keys in one del, exists or mget; items in one mset
	MaxTTL  = 365 * 24 * 3600 // seconds
)

// The params each method takes, as its bad_request messages state them.
const (
	shapeSet    = `{"key": string, "value": any JSON, "ttl"?: seconds}`
	shapeKey    = `{"key": string}`
	shapeKeys   = `{"keys": [string, ...]} or {"key": string}`
	shapeIncr   = `{"key": string, "by"?: integer}`
	shapeExpire = `{"key": string, "ttl": seconds}`
	shapeMget   = `{"keys": [string, ...]}`
	shapeMset   = `{"items": {key: any JSON, ...}, "ttl"?: seconds}`
)

// params is every member a cache method may take; each method allows a
// subset. Byte slices may point into the call's params, so a params is valid
// only while they are. method and shape name the call in its bad_request
// answers.
type params struct {
	method, shape string

	key    []byte
	keys   [][]byte
	value  []byte // raw JSON
	ttl    float64
	by     int64
	items  map[string]json.RawMessage
	hasKey bool // each has* says whether its member was present and not null
	hasTTL bool
	hasBy  bool
	// keys, value and items are present when not nil.
}

// jsonParams is params as encoding/json decodes them: the general path,
// for params that scanParams leaves to it.
type jsonParams struct {
	Key   *string                    `json:"key"`
	Keys  []string                   `json:"keys"`
	Value json.RawMessage            `json:"value"`
	TTL   *float64                   `json:"ttl"`
	By    *int64                     `json:"by"`
	Items map[string]json.RawMessage `json:"items"`
}

// bad is the bad_request answer for p's method, naming the shape it takes.
func (p *params) bad(why string) error {
	return protocol.Errorf(protocol.CodeBadRequest, "%s: %s; params must be %s", p.method, why, p.shape)
}

// decode parses raw strictly into p: a JSON object with no unknown member.
// The common shapes take scanParams, which does not allocate; anything it
// does not take goes through encoding/json, which says what is wrong.
func (p *params) decode(raw []byte) error {
	if json.Valid(raw) && p.scan(raw) {
		return nil
	}
	*p = params{method: p.method, shape: p.shape}
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return p.bad("params are not an object")
	}
	// encoding/json matches member names without regard to case; the cache
	// takes its members spelled exactly.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return p.bad(err.Error())
	}
	for name := range members {
		switch name {
		case "key", "keys", "value", "ttl", "by", "items":
		default:
			return p.bad("unknown member " + strconv.Quote(name))
		}
	}
	var jp jsonParams
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jp); err != nil {
		return p.bad(err.Error())
	}
	p.fromJSON(&jp)
	return nil
}

func (p *params) fromJSON(jp *jsonParams) {
	if jp.Key != nil {
		p.key, p.hasKey = []byte(*jp.Key), true
	}
	if jp.Keys != nil {
		p.keys = make([][]byte, len(jp.Keys))
		for i, k := range jp.Keys {
			p.keys[i] = []byte(k)
		}
	}
	p.value, p.items = jp.Value, jp.Items
	if jp.TTL != nil {
		p.ttl, p.hasTTL = *jp.TTL, true
	}
	if jp.By != nil {
		p.by, p.hasBy = *jp.By, true
	}
}

// extra names a member present in p that allowed does not list; "" when none.
func (p *params) extra(allowed string) string {
	present := [...]struct {
		name string
		set  bool
	}{
		{`"key"`, p.hasKey}, {`"keys"`, p.keys != nil}, {`"value"`, p.value != nil},
		{`"ttl"`, p.hasTTL}, {`"by"`, p.hasBy}, {`"items"`, p.items != nil},
	}
	for _, m := range present {
		if m.set && !strings.Contains(allowed, m.name) {
			return m.name
		}
	}
	return ""
}

// parse decodes raw into p for method and checks that only members named in
// shape appear.
func (p *params) parse(method, shape string, raw []byte) error {
	*p = params{method: method, shape: shape}
	if err := p.decode(raw); err != nil {
		return err
	}
	if name := p.extra(shape); name != "" {
		return p.bad(name + ` is not taken`)
	}
	return nil
}

// requireKey checks the required "key" member.
func (p *params) requireKey() error {
	if !p.hasKey || len(p.key) == 0 {
		return p.bad(`"key" must be a non-empty string`)
	}
	return nil
}

// keyList returns "keys", or "key" as a list of one when single is allowed;
// one of them is required.
func (p *params) keyList(single bool) ([][]byte, error) {
	switch {
	case p.keys != nil && p.hasKey:
		return nil, p.bad(`give "keys" or "key", not both`)
	case p.hasKey && single:
		return nil, p.requireKey()
	case len(p.keys) == 0 || len(p.keys) > MaxKeys:
		return nil, p.bad(`"keys" must list 1 to 1000 keys`)
	}
	for _, k := range p.keys {
		if len(k) == 0 {
			return nil, p.bad("a key must not be empty")
		}
	}
	return p.keys, nil
}

// ttlMillis converts the "ttl" member to milliseconds; 0 when absent and not
// required.
func (p *params) ttlMillis(required bool) (int64, error) {
	if !p.hasTTL {
		if required {
			return 0, p.bad(`"ttl" is required`)
		}
		return 0, nil
	}
	ms := math.Round(p.ttl * 1000)
	if ms < 1 || p.ttl > MaxTTL {
		return 0, p.bad(`"ttl" must be seconds from 0.001 to 31536000`)
	}
	return int64(ms), nil
}

// requireValue checks the required "value" member.
func (p *params) requireValue() error {
	if p.value == nil {
		return p.bad(`"value" is required`)
	}
	return nil
}

// scan fills p from raw, valid JSON, without allocating for the usual
// shapes: member names spelled plainly, each at most once; "key" a string
// without escapes; "keys" a list of such strings; "ttl" a number; "by" an
// integer in range; "value" anything. It reports false for anything else,
// leaving p partly filled, and encoding/json then decides.
func (p *params) scan(raw []byte) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return true
	}
	seen := 0
	for i < len(raw) && raw[i] == '"' {
		end := bytes.IndexByte(raw[i+1:], '"')
		if end < 0 {
			return false
		}
		name := raw[i+1 : i+1+end]
		i = skipSpace(raw, i+end+2)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipSpace(raw, i+1)
		bit, next := p.scanMember(name, raw, i)
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipSpace(raw, next)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// scanMember scans the value of member name at raw[i:] into p. It returns a
// bit that stands for the member and where the value ends; bit 0 when scan
// should leave the params to encoding/json.
func (p *params) scanMember(name, raw []byte, i int) (bit, end int) {
	switch string(name) {
	case "key":
		s, end, ok := plainString(raw, i)
		if !ok {
			return 0, 0
		}
		p.key, p.hasKey = s, true
		return 1, end
	case "keys":
		return p.scanKeys(raw, i)
	case "value":
		end := skipValue(raw, i)
		p.value = raw[i:end:end]
		return 4, end
	case "ttl":
		end := skipValue(raw, i)
		f, err := strconv.ParseFloat(string(raw[i:end]), 64)
		if raw[i] != '-' && (raw[i] < '0' || raw[i] > '9') || err != nil {
			return 0, 0
		}
		p.ttl, p.hasTTL = f, true
		return 8, end
	case "by":
		end := skipValue(raw, i)
		n, err := strconv.ParseInt(string(raw[i:end]), 10, 64)
		if err != nil {
			return 0, 0
		}
		p.by, p.hasBy = n, true
		return 16, end
	}
	return 0, 0
}

// scanKeys scans a list of plain strings.
func (p *params) scanKeys(raw []byte, i int) (bit, end int) {
	if raw[i] != '[' {
		return 0, 0
	}
	p.keys = make([][]byte, 0, 4)
	i = skipSpace(raw, i+1)
	if raw[i] == ']' {
		return 2, i + 1
	}
	for {
		s, end, ok := plainString(raw, i)
		if !ok {
			return 0, 0
		}
		p.keys = append(p.keys, s)
		i = skipSpace(raw, end)
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return 2, i + 1
		default:
			return 0, 0
		}
	}
}

// plainString returns the contents of the string at raw[i:] and where it
// ends, if it has no escape and is valid UTF-8, so its bytes are its value.
func plainString(raw []byte, i int) (s []byte, end int, ok bool) {
	if raw[i] != '"' {
		return nil, 0, false
	}
	n := bytes.IndexByte(raw[i+1:], '"')
	if n < 0 {
		return nil, 0, false
	}
	s = raw[i+1 : i+1+n : i+1+n]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return nil, 0, false
	}
	return s, i + n + 2, true
}

// skipValue returns where the JSON value at raw[i:], part of valid JSON, ends.
func skipValue(raw []byte, i int) int {
	depth := 0
	for ; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			i++
			for raw[i] != '"' {
				if raw[i] == '\\' {
					i++
				}
				i++
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var errNotJSON = errors.New("the stored value is not JSON; it was not stored through rpcd")
