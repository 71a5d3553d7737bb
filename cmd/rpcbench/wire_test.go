package main

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/rpcd/rpcd/internal/tcptest"
)

func TestRESPPingSplit(t *testing.T) {
	tests := []struct {
		name     string
		buf      string
		wantBody string
		wantN    int
		wantErr  bool
	}{
		{name: "empty", buf: ""},
		{name: "partial", buf: "+PON"},
		{name: "no LF yet", buf: "+PONG\r"},
		{name: "one", buf: "+PONG\r\n", wantBody: "+PONG", wantN: 7},
		{name: "two", buf: "+PONG\r\n+PONG\r\n", wantBody: "+PONG", wantN: 7},
		{name: "error line", buf: "-ERR nope\r\n", wantBody: "-ERR nope", wantN: 11},
		{name: "endless line", buf: string(bytes.Repeat([]byte("x"), maxRESPLine+1)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, n, err := respPing{}.split([]byte(tt.buf))
			if (err != nil) != tt.wantErr || string(body) != tt.wantBody || n != tt.wantN {
				t.Errorf("split(%.20q) = %q, %d, %v; want %q, %d, error %v",
					tt.buf, body, n, err, tt.wantBody, tt.wantN, tt.wantErr)
			}
		})
	}
}

func TestRESPPingCheck(t *testing.T) {
	tests := []struct {
		name string
		body string
		want verdict
	}{
		{name: "pong", body: "+PONG", want: verdict{}},
		{name: "error", body: "-ERR unknown command", want: verdict{errCode: "redis"}},
		{name: "other", body: "+OK", want: verdict{mismatch: true}},
		{name: "empty", body: "", want: verdict{mismatch: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (respPing{}).check([]byte(tt.body)); got != tt.want {
				t.Errorf("check(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

// serveRESPPing answers every PING on conn with +PONG.
func serveRESPPing(conn net.Conn) {
	r := bufio.NewReader(conn)
	want := respPing{}.request()
	buf := make([]byte, len(want))
	for {
		if _, err := r.Read(buf[:1]); err != nil {
			return
		}
		if _, err := r.Discard(len(want) - 1); err != nil {
			return
		}
		if _, err := conn.Write([]byte("+PONG\r\n")); err != nil {
			return
		}
	}
}

func TestRunRedisPing(t *testing.T) {
	addr := tcptest.Serve(t, serveRESPPing)
	r := runReport(t, 0, "-addr", addr.String(), "-json", "-redis", "-c", "2", "-depth", "4", "-d", "0", "-n", "400")
	if r.Requests != 400 || r.Mismatches != 0 || r.Method != "PING" {
		t.Errorf("report %+v, want 400 clean PINGs", r)
	}
}
