package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rpcd/rpcd/discovery"
	_ "github.com/rpcd/rpcd/discovery/etcd" // etcd:// targets
)

// resolveTimeout bounds the wait for a target's first list of endpoints.
const resolveTimeout = 5 * time.Second

// connAddrs returns the address each of n connections dials. A single
// host:port is used as it is; a list, dns:/// or etcd:// target is
// resolved once, and the connections are spread over its endpoints in
// proportion to their weights.
func connAddrs(target string, n int) ([]string, error) {
	if _, _, err := net.SplitHostPort(target); err == nil {
		return repeat(target, n), nil
	}
	r, err := discovery.New(target, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	first := make(chan []discovery.Endpoint, 1)
	go r.Watch(ctx, func(eps []discovery.Endpoint) {
		select {
		case first <- eps:
		default:
		}
	})
	select {
	case eps := <-first:
		if len(eps) == 0 {
			return nil, fmt.Errorf("target %s has no endpoint", target)
		}
		return spread(eps, n), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve %s: no list within %v", target, resolveTimeout)
	}
}

func repeat(addr string, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = addr
	}
	return addrs
}

// spread deals n connections over eps by weight: each next connection goes
// to the endpoint furthest below its share.
func spread(eps []discovery.Endpoint, n int) []string {
	total := 0
	for _, e := range eps {
		total += max(e.Weight, 1)
	}
	given := make([]int, len(eps))
	addrs := make([]string, 0, n)
	for k := range n {
		best, bestGap := 0, -1.0
		for i, e := range eps {
			gap := float64(k+1)*float64(max(e.Weight, 1))/float64(total) - float64(given[i])
			if gap > bestGap {
				best, bestGap = i, gap
			}
		}
		given[best]++
		addrs = append(addrs, eps[best].Addr)
	}
	return addrs
}
