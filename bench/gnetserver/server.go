package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"log"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/rpcd/rpcd/bench/internal/jsonping"
)

const headerSize = 4

// server answers frames on gnet's event loops.
type server struct {
	gnet.BuiltinEventEngine
	order  binary.ByteOrder
	codecs sync.Pool // *codec; each loop takes one per OnTraffic
}

// codec holds the buffers one OnTraffic call encodes answers with.
type codec struct {
	json bytes.Buffer
	enc  *json.Encoder
	out  []byte
}

func newServer(order binary.ByteOrder) *server {
	s := &server{order: order}
	s.codecs.New = func() any {
		c := &codec{}
		c.enc = json.NewEncoder(&c.json)
		c.enc.SetEscapeHTML(false)
		return c
	}
	return s
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	log.Printf("gnetserver listening")
	return gnet.None
}

// OnTraffic answers every complete frame buffered for c, in one write.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	cd := s.codecs.Get().(*codec)
	defer s.codecs.Put(cd)
	cd.out = cd.out[:0]
	action := gnet.None
	for {
		header, err := c.Peek(headerSize)
		if err != nil {
			break // fewer than headerSize bytes buffered
		}
		n := s.order.Uint32(header)
		if n == 0 || n > jsonping.MaxFrame {
			// The stream cannot be resynchronised: answer, then hang up.
			cd.append(s.order, jsonping.FrameError(n))
			action = gnet.Close
			break
		}
		if c.InboundBuffered() < headerSize+int(n) {
			break
		}
		frame, err := c.Next(headerSize + int(n))
		if err != nil {
			break
		}
		cd.append(s.order, jsonping.Handle(frame[headerSize:]))
	}
	if len(cd.out) > 0 {
		if _, err := c.Write(cd.out); err != nil {
			return gnet.Close
		}
	}
	return action
}

// append encodes resp as one frame at the end of cd.out.
func (cd *codec) append(order binary.ByteOrder, resp jsonping.Response) {
	cd.json.Reset()
	if err := cd.enc.Encode(resp); err != nil {
		resp = jsonping.Response{Out: "error", Result: map[string]string{"code": "internal", "message": err.Error()}}
		cd.json.Reset()
		_ = cd.enc.Encode(resp) // a map of strings always encodes
	}
	body := bytes.TrimSuffix(cd.json.Bytes(), []byte("\n"))
	var header [headerSize]byte
	order.PutUint32(header[:], uint32(len(body)))
	cd.out = append(cd.out, header[:]...)
	cd.out = append(cd.out, body...)
}
