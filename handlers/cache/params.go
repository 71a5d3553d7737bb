package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

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

// params is every member a cache method may take; each method allows a subset.
// method and shape name the call in its bad_request answers.
type params struct {
	method, shape string

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

// decodeInto parses raw strictly into p: a JSON object with no unknown member.
func (p *params) decode(raw []byte) error {
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
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return p.bad(err.Error())
	}
	return nil
}

// extra names a member present in p that allowed does not list; "" when none.
func (p *params) extra(allowed string) string {
	present := []struct {
		name string
		set  bool
	}{
		{"key", p.Key != nil}, {"keys", p.Keys != nil}, {"value", p.Value != nil},
		{"ttl", p.TTL != nil}, {"by", p.By != nil}, {"items", p.Items != nil},
	}
	for _, m := range present {
		if m.set && !bytes.Contains([]byte(allowed), []byte(`"`+m.name+`"`)) {
			return m.name
		}
	}
	return ""
}

// parse decodes raw for method and checks that only members named in shape
// appear.
func parse(method, shape string, raw []byte) (*params, error) {
	p := params{method: method, shape: shape}
	if err := p.decode(raw); err != nil {
		return nil, err
	}
	if name := p.extra(shape); name != "" {
		return nil, p.bad(`"` + name + `" is not taken`)
	}
	return &p, nil
}

// key returns the required "key" member.
func (p *params) key() (string, error) {
	if p.Key == nil || *p.Key == "" {
		return "", p.bad(`"key" must be a non-empty string`)
	}
	return *p.Key, nil
}

// keyList returns "keys", or "key" as a list of one when single is allowed;
// one of them is required.
func (p *params) keyList(single bool) ([]string, error) {
	switch {
	case p.Keys != nil && p.Key != nil:
		return nil, p.bad(`give "keys" or "key", not both`)
	case p.Key != nil && single:
		k, err := p.key()
		return []string{k}, err
	case len(p.Keys) == 0 || len(p.Keys) > MaxKeys:
		return nil, p.bad(`"keys" must list 1 to 1000 keys`)
	}
	for _, k := range p.Keys {
		if k == "" {
			return nil, p.bad("a key must not be empty")
		}
	}
	return p.Keys, nil
}

// ttl converts the "ttl" member to a duration; 0 when absent and not required.
func (p *params) ttl(required bool) (time.Duration, error) {
	if p.TTL == nil {
		if required {
			return 0, p.bad(`"ttl" is required`)
		}
		return 0, nil
	}
	ms := math.Round(*p.TTL * 1000)
	if ms < 1 || *p.TTL > MaxTTL {
		return 0, p.bad(`"ttl" must be seconds from 0.001 to 31536000`)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// value returns the required "value" member's raw JSON.
func (p *params) value() ([]byte, error) {
	if p.Value == nil {
		return nil, p.bad(`"value" is required`)
	}
	return p.Value, nil
}

var errNotJSON = errors.New("the stored value is not JSON; it was not stored through rpcd")
