package jsoncmp

import (
	"bytes"
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"

	"github.com/rpcd/rpcd/protocol"
)

// bodies are request bodies as rpcbench sends them.
var bodies = []struct {
	name   string
	body   []byte
	params []byte
}{
	{name: "ping", body: []byte(`{"in":"ping","params":"ireader 0"}`), params: []byte(`"ireader 0"`)},
	{name: "object", body: []byte(`{"in":"ping","params":{"user":"ireader","ids":[1,2,3,4,5],"tags":["a","b"],"ok":true}}`),
		params: []byte(`{"user":"ireader","ids":[1,2,3,4,5],"tags":["a","b"],"ok":true}`)},
}

type request struct {
	In     string          `json:"in"`
	Params json.RawMessage `json:"params"`
}

type goRequest struct {
	In     string            `json:"in"`
	Params gojson.RawMessage `json:"params"`
}

type response struct {
	Out    string          `json:"out"`
	Result json.RawMessage `json:"result"`
}

// TestDecodersAgree checks that every decoder extracts the same method and
// params, byte for byte, so the benchmarks compare like with like.
func TestDecodersAgree(t *testing.T) {
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			var req protocol.Request
			if err := protocol.ParseRequest(tt.body, &req); err != nil || !bytes.Equal(req.Params, tt.params) {
				t.Errorf("protocol: params %s, %v", req.Params, err)
			}
			var std request
			if err := json.Unmarshal(tt.body, &std); err != nil || !bytes.Equal(std.Params, tt.params) {
				t.Errorf("encoding/json: params %s, %v", std.Params, err)
			}
			var gj goRequest
			if err := gojson.Unmarshal(tt.body, &gj); err != nil || !bytes.Equal(gj.Params, tt.params) {
				t.Errorf("go-json: params %s, %v", gj.Params, err)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, tt := range bodies {
		b.Run(tt.name+"/protocol", func(b *testing.B) {
			var req protocol.Request
			b.ReportAllocs()
			for b.Loop() {
				if err := protocol.ParseRequest(tt.body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req request
				if err := json.Unmarshal(tt.body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/go-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req goRequest
				if err := gojson.Unmarshal(tt.body, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	params := bodies[0].params
	b.Run("protocol", func(b *testing.B) {
		dst := make([]byte, 0, 128)
		b.ReportAllocs()
		for b.Loop() {
			dst = protocol.AppendResponse(dst[:0], protocol.LittleEndian, "pong", params)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(response{Out: "pong", Result: params}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := gojson.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(response{Out: "pong", Result: params}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
