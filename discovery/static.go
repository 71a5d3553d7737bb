package discovery

import (
	"context"
	"fmt"
	"net"
	"strings"
)

type static []Endpoint

// Static returns a Resolver of a fixed list.
func Static(eps ...Endpoint) Resolver { return static(eps) }

func (s static) Watch(ctx context.Context, update func([]Endpoint)) {
	update(append([]Endpoint(nil), s...))
	<-ctx.Done()
}

func (static) Refresh() {}

// staticEndpoints parses a comma-separated list of host:port.
func staticEndpoints(list string) ([]Endpoint, error) {
	var eps []Endpoint
	for addr := range strings.SplitSeq(list, ",") {
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("parse target address %q: %w", addr, err)
		}
		eps = append(eps, Endpoint{Addr: addr, Weight: 1})
	}
	return eps, nil
}
