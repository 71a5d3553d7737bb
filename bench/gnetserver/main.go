package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/panjf2000/gnet/v2"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8082", "address to listen on")
	byteOrder := flag.String("byteorder", "little", "frame length byte order: little or big")
	loops := flag.Int("loops", 0, "event loops (0: one per CPU)")
	flag.Parse()
	order, err := parseByteOrder(*byteOrder)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gnetserver:", err)
		os.Exit(2)
	}
	s := newServer(order)
	log.Fatal(gnet.Run(s, "tcp://"+*listen,
		gnet.WithMulticore(true), gnet.WithReusePort(true), gnet.WithNumEventLoop(*loops)))
}

func parseByteOrder(s string) (binary.ByteOrder, error) {
	switch s {
	case "little":
		return binary.LittleEndian, nil
	case "big":
		return binary.BigEndian, nil
	}
	return nil, errors.New(`byte order must be "little" or "big"`)
}
