package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// decodeJSON decodes raw the general way only, as decode does when scan
// declines.
func decodeJSON(raw []byte) (params, error) {
	p := params{method: "cache.test", shape: "any"}
	var jp jsonParams
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jp); err != nil {
		return p, err
	}
	if dec.More() {
		return p, fmt.Errorf("trailing data")
	}
	p.fromJSON(&jp)
	return p, nil
}

// same reports whether two decodings hold the same members.
func same(a, b *params) bool {
	if a.hasKey != b.hasKey || !bytes.Equal(a.key, b.key) || (a.keys == nil) != (b.keys == nil) ||
		len(a.keys) != len(b.keys) || (a.value == nil) != (b.value == nil) || !bytes.Equal(a.value, b.value) ||
		a.hasTTL != b.hasTTL || a.ttl != b.ttl || a.hasBy != b.hasBy || a.by != b.by || (a.items == nil) != (b.items == nil) {
		return false
	}
	for i := range a.keys {
		if !bytes.Equal(a.keys[i], b.keys[i]) {
			return false
		}
	}
	return true
}

// checkScan fails when scan takes raw but reads it otherwise than
// encoding/json does.
func checkScan(t *testing.T, raw []byte) (took bool) {
	t.Helper()
	if !json.Valid(raw) {
		return false
	}
	var fast params
	if !fast.scan(raw) {
		return false
	}
	slow, err := decodeJSON(raw)
	if err != nil {
		t.Fatalf("scan took %s, which encoding/json refuses: %v", raw, err)
	}
	if !same(&fast, &slow) {
		t.Fatalf("scan read %s as %+v, encoding/json as %+v", raw, fast, slow)
	}
	return true
}

func TestScanMatchesJSON(t *testing.T) {
	tests := []struct {
		raw  string
		took bool // whether scan takes it, rather than leaving it to encoding/json
	}{
		{raw: `{"key":"rpcd:key"}`, took: true},
		{raw: ` { "key" : "a b" , "value" : {"x": [1, "}\"]"]} , "ttl" : 2.5 } `, took: true},
		{raw: `{"key":"é","value":null}`, took: true},
		{raw: `{"key":"a","by":-11}`, took: true},
		{raw: `{"keys":["a","b"]}`, took: true},
		{raw: `{"keys":[]}`, took: true},
		{raw: `{}`, took: true},
		{raw: `{"key":"a","value":"x","ttl":1e3}`, took: true},
		{raw: `{"key":"a\"b"}`},          // escape
		{raw: `{"key":"\u0061"}`},        // escape
		{raw: `{"k\u0065y":"a"}`},        // escaped name
		{raw: `{"key":null}`},            // null
		{raw: `{"key":1}`},               // wrong type
		{raw: `{"key":"a","key":"b"}`},   // twice
		{raw: `{"KEY":"a"}`},             // capitals
		{raw: `{"key":"a","by":1.5}`},    // fractional
		{raw: `{"key":"a","by":1e2}`},    // exponent
		{raw: `{"key":"a","ttl":"5"}`},   // string ttl
		{raw: `{"key":"a","ttl":1e999}`}, // out of range
		{raw: `{"keys":["a",1]}`},        // mixed list
		{raw: `{"items":{"a":1}}`},       // mset
		{raw: "{\"key\":\"\xff\"}"},      // invalid UTF-8
		{raw: `{"key":"a","other":1}`},   // unknown member
		{raw: `["key"]`},                 // not an object
		{raw: `null`},                    // not an object
	}
	for _, tt := range tests {
		if took := checkScan(t, []byte(tt.raw)); took != tt.took {
			t.Errorf("%s: scan took it: %v, want %v", tt.raw, took, tt.took)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"key":"a"}`, `{"key":"a","value":[1,{"b":"]"}],"ttl":0.5}`,
		`{"keys":["a","b"]}`, `{"key":"a","by":-3}`, `{"value":"\"}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkScan(t, raw) })
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	raws := [][]byte{[]byte(`{"key":"rpcd:key"}`), []byte(`{"key":"k","value":{"a":[1,2]},"ttl":60}`)}
	var p params
	allocs := testing.AllocsPerRun(100, func() {
		for _, raw := range raws {
			if err := p.parse("cache.set", shapeSet, raw); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations, want 0", allocs)
	}
}

func BenchmarkParseKey(b *testing.B) {
	raw := []byte(`{"key":"rpcd:key"}`)
	var p params
	for b.Loop() {
		if err := p.parse("cache.get", shapeKey, raw); err != nil {
			b.Fatal(err)
		}
	}
}
