package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	byteOrder := flag.String("byteorder", "little", "frame length byte order: little or big")
	flag.Parse()
	order, err := parseByteOrder(*byteOrder)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goserver:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("goserver listening on %s", ln.Addr())
	log.Fatal(serve(ln, order))
}

// serve accepts connections until the listener fails, one goroutine each.
func serve(ln net.Listener, order binary.ByteOrder) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go serveConn(conn, order)
	}
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
