package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantMethod string
		wantParams string
	}{
		{name: "seed client", body: `{"in": "ping", "params": "ireader 0"}`, wantMethod: "ping", wantParams: `"ireader 0"`},
		{name: "absent params", body: `{"in":"ping"}`, wantMethod: "ping", wantParams: `null`},
		{name: "big integer", body: `{"in":"ping","params":12345678901234567890}`, wantMethod: "ping", wantParams: `12345678901234567890`},
		{name: "float", body: `{"in":"ping","params":3.5}`, wantMethod: "ping", wantParams: `3.5`},
		{name: "exponent", body: `{"in":"ping","params":-1.5E+300}`, wantMethod: "ping", wantParams: `-1.5E+300`},
		{name: "unicode raw", body: `{"in":"ping","params":"héllo 世界"}`, wantMethod: "ping", wantParams: `"héllo 世界"`},
		{name: "unicode escaped", body: `{"in":"ping","params":"h\u00e9llo \ud83d\ude00"}`, wantMethod: "ping", wantParams: `"h\u00e9llo \ud83d\ude00"`},
		{name: "nested kept with spacing", body: `{"params": {"a": [1, {"b": null}], "c": true} ,"in":"ping"}`, wantMethod: "ping", wantParams: `{"a": [1, {"b": null}], "c": true}`},
		{name: "surrounding space", body: " \r\n\t{ \"in\" : \"fib\" , \"params\" : 10 } \n", wantMethod: "fib", wantParams: `10`},
		{name: "escaped method", body: `{"in":"p\u0069ng\/x","params":[]}`, wantMethod: "ping/x", wantParams: `[]`},
		{name: "escaped key", body: `{"\u0069n":"ping","par\u0061ms":false}`, wantMethod: "ping", wantParams: `false`},
		{name: "last member wins", body: `{"in":"a","in":"b","params":1,"params":2}`, wantMethod: "b", wantParams: `2`},
		{name: "extra members ignored", body: `{"id":7,"in":"ping","meta":{"x":[]}}`, wantMethod: "ping", wantParams: `null`},
		{name: "empty method", body: `{"in":""}`, wantMethod: "", wantParams: `null`},
		{name: "explicit null", body: `{"in":"ping","params":null}`, wantMethod: "ping", wantParams: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := ParseRequest([]byte(tt.body), &req); err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if string(req.Method) != tt.wantMethod || string(req.Params) != tt.wantParams {
				t.Fatalf("got method %q params %s; want %q %s", req.Method, req.Params, tt.wantMethod, tt.wantParams)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantMsg string
	}{
		{name: "not JSON", body: `hello`, wantMsg: "malformed JSON at offset 0"},
		{name: "truncated", body: `{"in":"ping","params":[1,2`, wantMsg: "unexpected end of input"},
		{name: "trailing garbage", body: `{"in":"ping"} x`, wantMsg: "malformed JSON at offset 14"},
		{name: "two objects", body: `{"in":"ping"}{}`, wantMsg: "malformed JSON"},
		{name: "array body", body: `["ping"]`, wantMsg: "must be a JSON object"},
		{name: "string body", body: `"ping"`, wantMsg: "must be a JSON object"},
		{name: "empty body", body: ``, wantMsg: "unexpected end of input"},
		{name: "missing in", body: `{"params":1}`, wantMsg: `no "in" member`},
		{name: "numeric in", body: `{"in":5}`, wantMsg: `"in" must be a string`},
		{name: "null in", body: `{"in":null}`, wantMsg: `"in" must be a string`},
		{name: "bad escape", body: `{"in":"p\xng"}`, wantMsg: "invalid escape"},
		{name: "short unicode escape", body: `{"in":"\u12"}`, wantMsg: `invalid \u escape`},
		{name: "control char", body: "{\"in\":\"a\x01\"}", wantMsg: "control character"},
		{name: "invalid utf8", body: "{\"in\":\"ping\",\"params\":\"\xff\"}", wantMsg: "invalid UTF-8"},
		{name: "leading zero", body: `{"in":"ping","params":01}`, wantMsg: "malformed JSON"},
		{name: "bare minus", body: `{"in":"ping","params":-}`, wantMsg: "invalid number"},
		{name: "dot without digits", body: `{"in":"ping","params":1.}`, wantMsg: "invalid number"},
		{name: "bad literal", body: `{"in":"ping","params":nul}`, wantMsg: "invalid literal"},
		{name: "trailing comma", body: `{"in":"ping",}`, wantMsg: "malformed JSON"},
		{name: "single quotes", body: `{'in':'ping'}`, wantMsg: "malformed JSON"},
		{name: "missing colon", body: `{"in" "ping"}`, wantMsg: "malformed JSON"},
		{name: "too deep", body: `{"in":"ping","params":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, wantMsg: "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			err := ParseRequest([]byte(tt.body), &req)
			var perr *Error
			if !errors.As(err, &perr) || perr.Code != CodeBadRequest {
				t.Fatalf("err = %v, want a bad_request *Error", err)
			}
			if !strings.Contains(perr.Message, tt.wantMsg) {
				t.Fatalf("message %q does not contain %q", perr.Message, tt.wantMsg)
			}
		})
	}
}

func TestParseRequestNoAllocs(t *testing.T) {
	bodies := []string{
		`{"in": "ping", "params": "ireader 0"}`,
		`{"in":"ping","params":{"a":[1,2.5,"x",null,true]}}`,
		`{"in":"p\u0069ng","params":1}`,
	}
	for _, body := range bodies {
		b := []byte(body)
		var req Request
		_ = ParseRequest(b, &req) // warms the scratch buffer
		allocs := testing.AllocsPerRun(100, func() {
			if err := ParseRequest(b, &req); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per parse, want 0", body, allocs)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		result string
	}{
		{name: "pong", out: "pong", result: `"ireader 0"`},
		{name: "big number", out: "fib_r", result: `354224848179261915075`},
		{name: "nested", out: "pong", result: `{"a":[1,{"b":"é"}]}`},
		{name: "odd out", out: "q\"uote\\\n\x01é", result: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := AppendResponse(nil, BigEndian, tt.out, []byte(tt.result))
			body, n, err := Split(frame, BigEndian, DefaultMaxFrame)
			if err != nil || n != len(frame) {
				t.Fatalf("Split = %d, %v", n, err)
			}
			var std struct {
				Out    string          `json:"out"`
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(body, &std); err != nil {
				t.Fatalf("encoding/json rejects %s: %v", body, err)
			}
			var resp Response
			if err := ParseResponse(body, &resp); err != nil {
				t.Fatal(err)
			}
			if std.Out != tt.out || string(resp.Out) != tt.out || string(resp.Result) != tt.result {
				t.Fatalf("got out %q/%q result %s", std.Out, resp.Out, resp.Result)
			}
		})
	}
}

func TestErrorRoundTrip(t *testing.T) {
	want := Errorf(CodeUnknownMethod, "no method %q", "pnig")
	frame := AppendError(nil, LittleEndian, want)
	body, _, _ := Split(frame, LittleEndian, DefaultMaxFrame)
	if string(body) != `{"out":"error","result":{"code":"unknown_method","message":"no method \"pnig\""}}` {
		t.Fatalf("body = %s", body)
	}
	var resp Response
	if err := ParseResponse(body, &resp); err != nil {
		t.Fatal(err)
	}
	got, ok := resp.AsError()
	if !ok || *got != *want {
		t.Fatalf("AsError = %v, %v; want %v", got, ok, want)
	}
	if want.Error() != `unknown_method: no method "pnig"` {
		t.Fatalf("Error() = %q", want.Error())
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\tnl\ncr\r", "\x00\x1f\x7f", `"\`, "é世😀", "bad\xffutf8", "<&>"} {
		enc := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, enc, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if got != want {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
	}
}

func TestAppendResponseNoAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	params := []byte(`"ireader 0"`)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendResponse(dst[:0], LittleEndian, "pong", params)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per answer, want 0", allocs)
	}
}
