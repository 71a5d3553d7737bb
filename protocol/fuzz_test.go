package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecode checks the decoder against two properties. Framing: a stream cut
// into reads of any size yields the same frames as the whole stream, and
// AppendRequest's frames split back into their bodies. Parsing: ParseRequest
// accepts exactly the bodies encoding/json reads as an object with a string
// "in", and returns params byte for byte as encoding/json's RawMessage sees them.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"in": "ping", "params": "ireader 0"}`,
		`{"in":"fib","params":{"n":90}}`,
		`{"in":"ping","params":12345678901234567890}`,
		`{"in":"p\u0069ng","params":[1,2.5e-3,"\ud83d\ude00",null,true,false]}`,
		`[1,2]`, `{"params":1}`, `{"in":3}`, `{"in":"a"} x`, `{`,
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		checkFraming(t, body, int(chunk)+1)
		checkParse(t, body)
	})
}

func checkFraming(t *testing.T, body []byte, chunk int) {
	if len(body) == 0 {
		return
	}
	stream := AppendFrame(nil, LittleEndian, body)
	stream = AppendFrame(stream, LittleEndian, []byte("tail"))
	got := splitChunked(t, stream, chunk)
	if len(got) != 2 || got[0] != string(body) || got[1] != "tail" {
		t.Fatalf("chunked split gave %q", got)
	}
	if !json.Valid(body) {
		return
	}
	frame := AppendRequest(nil, BigEndian, "m", body)
	inner, n, err := Split(frame, BigEndian, DefaultMaxFrame)
	if err != nil || n != len(frame) {
		t.Fatalf("Split(AppendRequest) = %d, %v", n, err)
	}
	var req Request
	if utf8.Valid(body) && !tooDeep(body) {
		if err := ParseRequest(inner, &req); err != nil {
			t.Fatalf("ParseRequest(%s): %v", inner, err)
		}
		if string(req.Method) != "m" || !bytes.Equal(req.Params, bytes.TrimSpace(body)) {
			t.Fatalf("round trip gave %q %s", req.Method, req.Params)
		}
	}
}

func checkParse(t *testing.T, body []byte) {
	if !utf8.Valid(body) || tooDeep(body) {
		return // encoding/json accepts invalid UTF-8 and deeper nesting; rpcd does not
	}
	var req Request
	err := ParseRequest(body, &req)
	var std map[string]json.RawMessage
	stdErr := json.Unmarshal(body, &std)
	var method string
	if stdErr == nil {
		raw, ok := std["in"]
		if !ok || json.Unmarshal(raw, &method) != nil || raw[0] != '"' {
			stdErr = errNotRequest
		}
	}
	if (err == nil) != (stdErr == nil) {
		t.Fatalf("body %q: rpcd says %v, encoding/json says %v", body, err, stdErr)
	}
	if err != nil {
		return
	}
	wantParams := []byte("null")
	if raw, ok := std["params"]; ok {
		wantParams = raw
	}
	if string(req.Method) != method || !bytes.Equal(req.Params, wantParams) {
		t.Fatalf("body %q: got %q %s, want %q %s", body, req.Method, req.Params, method, wantParams)
	}
}

var errNotRequest = &Error{Code: CodeBadRequest, Message: "not a request"}

// tooDeep reports bodies whose bracket count could exceed rpcd's nesting limit.
func tooDeep(b []byte) bool {
	return bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) >= maxDepth
}
