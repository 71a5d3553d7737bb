package protocol

import "testing"

var benchFrame = AppendRequest(nil, LittleEndian, "ping", []byte(`"ireader 0"`))

func BenchmarkSplit(b *testing.B) {
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if _, n, _ := Split(benchFrame, LittleEndian, DefaultMaxFrame); n == 0 {
			b.Fatal("no frame")
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	body := benchFrame[HeaderSize:]
	var req Request
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := ParseRequest(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	dst := make([]byte, 0, 128)
	params := []byte(`"ireader 0"`)
	for b.Loop() {
		dst = AppendResponse(dst[:0], LittleEndian, "pong", params)
	}
}
