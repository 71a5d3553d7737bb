package resp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads return src a few bytes at a time, so
// every split of a reply across reads is exercised.
type chunkConn struct {
	net.Conn
	src   []byte
	chunk int
	wrote bytes.Buffer
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.chunk)], c.src)
	c.src = c.src[n:]
	return n, nil
}

func (c *chunkConn) Write(b []byte) (int, error) { return c.wrote.Write(b) }
func (c *chunkConn) SetDeadline(time.Time) error { return nil }
func (c *chunkConn) Close() error                { return nil }
func newTestConn(src string, chunk, bufSize int) *Conn {
	return &Conn{nc: &chunkConn{src: []byte(src), chunk: chunk}, in: make([]byte, bufSize), timeout: time.Second}
}

// describe renders a reply as a short string for comparisons.
func describe(r Reply) string {
	switch r.Kind {
	case Status:
		return "status " + string(r.Str)
	case Error:
		return "error " + string(r.Str)
	case Int:
		return "int " + strconv.FormatInt(r.Int, 10)
	case Bulk:
		return "bulk " + strconv.Quote(string(r.Str))
	case Nil:
		return "nil"
	case Array:
		return "array " + strconv.FormatInt(r.Int, 10)
	}
	return "kind " + strconv.Itoa(int(r.Kind))
}

func TestRead(t *testing.T) {
	big := string(bytes.Repeat([]byte("v"), 10000))
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool // after the replies in want
	}{
		{name: "status", in: "+OK\r\n", want: []string{"status OK"}},
		{name: "error", in: "-ERR value is not an integer\r\n", want: []string{"error ERR value is not an integer"}},
		{name: "ints", in: ":0\r\n:-1\r\n:9223372036854775807\r\n:-9223372036854775808\r\n",
			want: []string{"int 0", "int -1", "int 9223372036854775807", "int -9223372036854775808"}},
		{name: "bulk", in: "$3\r\nabc\r\n", want: []string{`bulk "abc"`}},
		{name: "bulk holding CRLF", in: "$4\r\na\r\nb\r\n", want: []string{`bulk "a\r\nb"`}},
		{name: "empty bulk", in: "$0\r\n\r\n", want: []string{`bulk ""`}},
		{name: "nil bulk and array", in: "$-1\r\n*-1\r\n", want: []string{"nil", "nil"}},
		{name: "array", in: "*3\r\n$1\r\na\r\n$-1\r\n:7\r\n", want: []string{"array 3", `bulk "a"`, "nil", "int 7"}},
		{name: "bulk larger than the buffer", in: "$10000\r\n" + big + "\r\n+OK\r\n", want: []string{"bulk " + strconv.Quote(big), "status OK"}},
		{name: "int overflow", in: ":9223372036854775808\r\n", wantErr: true},
		{name: "int not a number", in: ":12a\r\n", wantErr: true},
		{name: "empty int", in: ":\r\n", wantErr: true},
		{name: "bad length", in: "$-2\r\n", wantErr: true},
		{name: "bulk without CRLF", in: "$3\r\nabcd\r\n", wantErr: true},
		{name: "bare CR", in: "+OK\rX\n", wantErr: true},
		{name: "unknown type", in: "%2\r\n", wantErr: true},
		{name: "empty line", in: "\r\n", wantErr: true},
		{name: "cut short", in: "$5\r\nab", wantErr: true},
		{name: "closed before a reply", in: "", wantErr: true},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 7, 1 << 20} {
			c := newTestConn(tt.in, chunk, 16)
			for i, w := range tt.want {
				r, err := c.Read()
				if err != nil {
					t.Fatalf("%s, chunks of %d: reply %d: %v", tt.name, chunk, i, err)
				}
				if got := describe(r); got != w {
					t.Fatalf("%s, chunks of %d: reply %d is %s, want %s", tt.name, chunk, i, got, w)
				}
			}
			_, err := c.Read()
			if tt.wantErr && err == nil || !tt.wantErr && !errors.Is(err, io.EOF) {
				t.Fatalf("%s, chunks of %d: after the replies: %v (want an error: %v)", tt.name, chunk, err, tt.wantErr)
			}
			if err != nil && c.Err() == nil {
				t.Fatalf("%s: a read error did not break the connection", tt.name)
			}
		}
	}
}

func TestCommandEncoding(t *testing.T) {
	c := newTestConn("", 1, 16)
	c.Begin(5)
	c.ArgString("SET")
	c.Arg([]byte("k\r\n"))
	c.Arg(nil)
	c.ArgString("PX")
	c.ArgInt(-250)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "*5\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n$2\r\nPX\r\n$4\r\n-250\r\n"
	if got := c.nc.(*chunkConn).wrote.String(); got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

func TestReadDoesNotAllocate(t *testing.T) {
	reply := "*2\r\n$3\r\nabc\r\n:42\r\n"
	src := bytes.Repeat([]byte(reply), 1000)
	cc := &chunkConn{src: src, chunk: 4096}
	c := &Conn{nc: cc, in: make([]byte, 4096)}
	allocs := testing.AllocsPerRun(100, func() {
		for range 3 {
			if _, err := c.Read(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reply, want 0", allocs)
	}
}

// FuzzRead checks that any input parses into replies or fails cleanly, and
// that replies re-encoded and parsed again come out the same.
func FuzzRead(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":-12\r\n", "$3\r\nabc\r\n", "$-1\r\n",
		"*2\r\n$1\r\na\r\n:1\r\n", "*-1\r\n", "$2\r\na\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newTestConn(string(in), 3, 8)
		var again []byte
		var want []string
		for range 100 {
			r, err := c.Read()
			if err != nil {
				break
			}
			want = append(want, describe(r))
			again = appendReply(again, r)
		}
		c2 := newTestConn(string(again), 5, 8)
		for i, w := range want {
			r, err := c2.Read()
			if err != nil {
				t.Fatalf("re-encoded reply %d (%s): %v", i, w, err)
			}
			if got := describe(r); got != w {
				t.Fatalf("re-encoded reply %d is %s, want %s", i, got, w)
			}
		}
	})
}

// appendReply encodes r as RESP2; an array's elements follow it separately.
func appendReply(b []byte, r Reply) []byte {
	switch r.Kind {
	case Status:
		return append(append(append(b, '+'), r.Str...), "\r\n"...)
	case Error:
		return append(append(append(b, '-'), r.Str...), "\r\n"...)
	case Int:
		return append(strconv.AppendInt(append(b, ':'), r.Int, 10), "\r\n"...)
	case Bulk:
		b = append(strconv.AppendInt(append(b, '$'), int64(len(r.Str)), 10), "\r\n"...)
		return append(append(b, r.Str...), "\r\n"...)
	case Nil:
		return append(b, "$-1\r\n"...)
	}
	return append(strconv.AppendInt(append(b, '*'), r.Int, 10), "\r\n"...)
}

func TestReplySize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
		bad  bool
	}{
		{name: "status", in: "+OK\r\n+PONG\r\n", want: 5},
		{name: "partial line", in: "+O", want: 0},
		{name: "bulk", in: "$3\r\nabc\r\n", want: 9},
		{name: "bulk lacking its CRLF", in: "$3\r\nabc", want: 0},
		{name: "nil", in: "$-1\r\n", want: 5},
		{name: "array", in: "*2\r\n$1\r\na\r\n:5\r\n", want: 15},
		{name: "array lacking an element", in: "*2\r\n$1\r\na\r\n", want: 0},
		{name: "nested array", in: "*1\r\n*1\r\n+x\r\n-", want: 12},
		{name: "bare CR", in: "+O\rK\r\n", bad: true},
		{name: "unknown kind", in: "?\r\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ReplySize([]byte(tt.in))
			if (err != nil) != tt.bad || n != tt.want {
				t.Fatalf("ReplySize(%q) = %d, %v; want %d, error %v", tt.in, n, err, tt.want, tt.bad)
			}
		})
	}
}

// A decoder parses loaded whole replies, and reads past them as an error
// rather than blocking.
func TestDecoder(t *testing.T) {
	d := NewDecoder()
	d.Load([]byte("*2\r\n$1\r\na\r\n:5\r\n"))
	for _, want := range []Reply{{Kind: Array, Int: 2}, {Kind: Bulk, Str: []byte("a")}, {Kind: Int, Int: 5}} {
		r, err := d.Read()
		if err != nil || r.Kind != want.Kind || r.Int != want.Int || string(r.Str) != string(want.Str) {
			t.Fatalf("Read = %+v, %v; want %+v", r, err, want)
		}
	}
	if _, err := d.Read(); err == nil {
		t.Fatal("Read past the loaded bytes succeeded")
	}
	d.Begin(1)
	d.ArgString("PING")
	if got := string(d.Queued()); got != "*1\r\n$4\r\nPING\r\n" {
		t.Fatalf("Queued = %q", got)
	}
	d.Drop(4)
	if got := string(d.Queued()); got != "$4\r\nPING\r\n" {
		t.Fatalf("after Drop(4), Queued = %q", got)
	}
}
