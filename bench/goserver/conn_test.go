package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/bench/internal/jsonping"
)

// dialServer starts serve on 127.0.0.1:0 and connects to it.
func dialServer(t *testing.T, order binary.ByteOrder) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln, order) // returns once the listener is closed
	t.Cleanup(func() { ln.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func appendFrame(dst []byte, order binary.ByteOrder, body string) []byte {
	var header [4]byte
	order.PutUint32(header[:], uint32(len(body)))
	return append(append(dst, header[:]...), body...)
}

func readFrame(r io.Reader, order binary.ByteOrder) (string, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return "", err
	}
	body := make([]byte, order.Uint32(header[:]))
	_, err := io.ReadFull(r, body)
	return string(body), err
}

func TestPipelinedAnswersInOrder(t *testing.T) {
	exchanges := []struct {
		name    string
		request string
		answer  string
	}{
		{name: "ping", request: `{"in":"ping","params":{"a":[1,"<&>"]}}`, answer: `{"out":"pong","result":{"a":[1,"<&>"]}}`},
		{name: "ping without params", request: `{"in":"ping"}`, answer: `{"out":"pong","result":null}`},
		{name: "unknown method", request: `{"in":"nope","params":1}`,
			answer: `{"out":"error","result":{"code":"unknown_method","message":"unknown method \"nope\""}}`},
		{name: "no method", request: `{"params":1}`,
			answer: `{"out":"error","result":{"code":"bad_request","message":"request has no \"in\""}}`},
	}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			conn := dialServer(t, order)
			var batch []byte
			for _, ex := range exchanges {
				batch = appendFrame(batch, order, ex.request)
			}
			if _, err := conn.Write(batch); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			for _, ex := range exchanges {
				got, err := readFrame(r, order)
				if err != nil || got != ex.answer {
					t.Errorf("%s: answer %s, %v; want %s", ex.name, got, err, ex.answer)
				}
			}
		})
	}
}

func TestBadFrameClosesConnection(t *testing.T) {
	tests := []struct {
		name     string
		length   uint32
		wantCode string
	}{
		{name: "zero length", length: 0, wantCode: `"code":"bad_frame"`},
		{name: "too large", length: jsonping.MaxFrame + 1, wantCode: `"code":"frame_too_large"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dialServer(t, binary.LittleEndian)
			if _, err := conn.Write(binary.LittleEndian.AppendUint32(nil, tt.length)); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(conn)
			got, err := readFrame(r, binary.LittleEndian)
			if err != nil || !strings.Contains(got, tt.wantCode) {
				t.Errorf("answer %s, %v; want an error with %s", got, err, tt.wantCode)
			}
			if _, err := readFrame(r, binary.LittleEndian); !errors.Is(err, io.EOF) {
				t.Errorf("read after the error answer: %v, want EOF", err)
			}
		})
	}
}
