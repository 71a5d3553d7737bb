package protocol

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name     string
		order    ByteOrder
		in       []byte
		max      uint32
		wantBody string
		wantN    int
		wantErr  error
	}{
		{name: "empty buffer", in: nil, max: 16},
		{name: "partial header", in: []byte{3, 0}, max: 16},
		{name: "header only", in: []byte{3, 0, 0, 0}, max: 16},
		{name: "partial body", in: []byte{3, 0, 0, 0, 'a', 'b'}, max: 16},
		{name: "whole frame", in: []byte{3, 0, 0, 0, 'a', 'b', 'c'}, max: 16, wantBody: "abc", wantN: 7},
		{name: "frame then more", in: []byte{1, 0, 0, 0, 'x', 9, 9}, max: 16, wantBody: "x", wantN: 5},
		{name: "big endian", order: BigEndian, in: []byte{0, 0, 0, 2, 'h', 'i'}, max: 16, wantBody: "hi", wantN: 6},
		{name: "zero length", in: []byte{0, 0, 0, 0}, max: 16, wantErr: ErrEmptyFrame},
		{name: "at max", in: []byte{4, 0, 0, 0, 1, 2, 3, 4}, max: 4, wantBody: "\x01\x02\x03\x04", wantN: 8},
		{name: "over max before body", in: []byte{5, 0, 0, 0}, max: 4, wantErr: &FrameTooLargeError{Length: 5, Max: 4}},
		{name: "huge length", in: []byte{0xff, 0xff, 0xff, 0xff}, max: DefaultMaxFrame, wantErr: &FrameTooLargeError{Length: 1<<32 - 1, Max: DefaultMaxFrame}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, n, err := Split(tt.in, tt.order, tt.max)
			var tooLarge *FrameTooLargeError
			switch {
			case errors.As(tt.wantErr, &tooLarge):
				var got *FrameTooLargeError
				if !errors.As(err, &got) || *got != *tooLarge {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != tt.wantErr:
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(body) != tt.wantBody || n != tt.wantN {
				t.Fatalf("Split = %q, %d; want %q, %d", body, n, tt.wantBody, tt.wantN)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{name: "empty", in: nil, want: 4},
		{name: "one header byte", in: []byte{5}, want: 3},
		{name: "header only", in: []byte{5, 0, 0, 0}, want: 5},
		{name: "part of body", in: []byte{5, 0, 0, 0, 1, 2}, want: 3},
		{name: "complete", in: []byte{2, 0, 0, 0, 1, 2}, want: 0},
		{name: "complete and more", in: []byte{1, 0, 0, 0, 1, 2}, want: 0},
	}
	for _, tt := range tests {
		if got := Missing(tt.in, LittleEndian); got != tt.want {
			t.Errorf("%s: Missing = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestByteOrder(t *testing.T) {
	for _, o := range []ByteOrder{LittleEndian, BigEndian} {
		got, err := ParseByteOrder(o.String())
		if err != nil || got != o {
			t.Fatalf("ParseByteOrder(%q) = %v, %v", o.String(), got, err)
		}
		var b [4]byte
		o.PutLen(b[:], 0x01020304)
		if o.Len(b[:]) != 0x01020304 {
			t.Fatalf("%v: round trip gave %#x", o, o.Len(b[:]))
		}
	}
	var b [4]byte
	LittleEndian.PutLen(b[:], 0x01020304)
	if !bytes.Equal(b[:], []byte{4, 3, 2, 1}) {
		t.Fatalf("little endian wrote % x", b)
	}
	if _, err := ParseByteOrder("middle"); err == nil {
		t.Fatal("ParseByteOrder accepted a bad name")
	}
}

// TestSplitIncremental feeds a stream of frames in every chunk size and checks
// that the same bodies come out in the same order.
func TestSplitIncremental(t *testing.T) {
	var stream []byte
	want := []string{`{"in":"ping","params":1}`, `{"in":"ping"}`, `x`, string(bytes.Repeat([]byte("y"), 300))}
	for _, w := range want {
		stream = AppendFrame(stream, LittleEndian, []byte(w))
	}
	for chunk := 1; chunk <= len(stream); chunk++ {
		got := splitChunked(t, stream, chunk)
		if len(got) != len(want) {
			t.Fatalf("chunk %d: got %d frames, want %d", chunk, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d frame %d: got %q, want %q", chunk, i, got[i], want[i])
			}
		}
	}
}

// splitChunked decodes stream as a reader would: appending chunk bytes at a time
// and taking every complete frame after each read.
func splitChunked(t testing.TB, stream []byte, chunk int) []string {
	var buf []byte
	var out []string
	for off := 0; off < len(stream); off += chunk {
		buf = append(buf, stream[off:min(off+chunk, len(stream))]...)
		for {
			body, n, err := Split(buf, LittleEndian, DefaultMaxFrame)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if n == 0 {
				break
			}
			out = append(out, string(body))
			buf = buf[n:]
		}
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over", len(buf))
	}
	return out
}

func TestReadFrame(t *testing.T) {
	twoFrames := AppendFrame(AppendFrame(nil, BigEndian, []byte("one")), BigEndian, []byte("second"))
	tests := []struct {
		name    string
		in      []byte
		max     uint32
		want    []string
		wantErr error
	}{
		{name: "frames then end of stream", in: twoFrames, max: 16, want: []string{"one", "second"}, wantErr: io.EOF},
		{name: "nothing", in: nil, max: 16, wantErr: io.EOF},
		{name: "partial header", in: []byte{0, 0}, max: 16, wantErr: io.ErrUnexpectedEOF},
		{name: "partial body", in: []byte{0, 0, 0, 3, 'a'}, max: 16, wantErr: io.ErrUnexpectedEOF},
		{name: "zero length", in: []byte{0, 0, 0, 0}, max: 16, wantErr: ErrEmptyFrame},
		{name: "over max, body never read", in: []byte{0, 0, 0, 9}, max: 8, wantErr: &FrameTooLargeError{Length: 9, Max: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			var got []string
			var err error
			for range len(tt.want) + 1 {
				var body []byte
				if body, err = ReadFrame(r, BigEndian, tt.max, nil); err != nil {
					break
				}
				got = append(got, string(body))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("read %q, want %q", got, tt.want)
			}
			var tooLarge *FrameTooLargeError
			if errors.As(tt.wantErr, &tooLarge) {
				var gotErr *FrameTooLargeError
				if !errors.As(err, &gotErr) || *gotErr != *tooLarge {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != tt.wantErr {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	frame := AppendFrame(nil, LittleEndian, []byte(`{"out":"pong","result":"x"}`))
	var r bytes.Reader
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(frame)
		body, err := ReadFrame(&r, LittleEndian, DefaultMaxFrame, buf)
		if err != nil || !bytes.Equal(body, frame[HeaderSize:]) || &body[0] != &buf[0] {
			t.Fatalf("ReadFrame = %q, %v; want the body in buf", body, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReadFrame into a big enough buffer allocated %v times", allocs)
	}
	r.Reset(frame)
	if body, err := ReadFrame(&r, LittleEndian, DefaultMaxFrame, buf[:0:8]); err != nil || !bytes.Equal(body, frame[HeaderSize:]) {
		t.Fatalf("ReadFrame past a small buffer = %q, %v", body, err)
	}
}
