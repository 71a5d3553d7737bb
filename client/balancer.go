package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/discovery"
)

// update replaces the endpoint list with list, keeping the connections of
// endpoints that stay. Endpoints that left close once their answers are in.
// It runs on the resolver's goroutine.
func (c *Client) update(list []discovery.Endpoint) {
	for _, e := range c.replace(list) {
		e.retire()
	}
}

// replace installs list and returns the endpoints that left it.
func (c *Client) replace(list []discovery.Endpoint) (left []*endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil
	}
	next := make(map[string]*endpoint, len(list))
	eps := make([]*endpoint, 0, len(list))
	var added, removed []string
	for _, d := range list {
		if next[d.Addr] != nil {
			continue
		}
		e := c.byAddr[d.Addr]
		if e == nil {
			e = c.newEndpoint(d.Addr)
			added = append(added, d.Addr)
		}
		e.weight.Store(int64(max(1, d.Weight)))
		next[d.Addr] = e
		eps = append(eps, e)
	}
	for addr, e := range c.byAddr {
		if next[addr] == nil {
			left = append(left, e)
			removed = append(removed, addr)
		}
	}
	c.byAddr = next
	c.eps.Store(&eps)
	c.known = true
	close(c.changed)
	c.changed = make(chan struct{})
	if len(added)+len(removed) > 0 {
		c.log.Info("endpoints changed", zap.Int("endpoints", len(eps)),
			zap.Strings("added", added), zap.Strings("removed", removed))
	}
	return left
}

// waitChange returns a channel closed at the next change of the list.
func (c *Client) waitChange() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// pick chooses the endpoint for an attempt, avoiding those in tried where it
// can. With no endpoint at all it waits for one until ctx ends.
func (c *Client) pick(ctx context.Context, tried []*endpoint) (*endpoint, error) {
	for {
		if c.closed.Load() {
			return nil, ErrClosed
		}
		if e := choose(*c.eps.Load(), tried); e != nil {
			return e, nil
		}
		// Look again after taking the channel, so no change goes unseen.
		changed := c.waitChange()
		if e := choose(*c.eps.Load(), tried); e != nil {
			return e, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for an endpoint: %w", ctx.Err())
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// choose applies the power of two choices: of two endpoints drawn at random
// with probability proportional to weight (without replacement), the one
// with fewer calls per unit of weight (lighter). While neither holds more
// than one call in flight per unit of its weight, the first drawn is taken,
// so that under a light load the shares are the draw's, which follows the
// weights: comparing a handful of whole calls would lean toward the lighter
// weights. Ejected endpoints and those in tried are passed over while others
// remain.
func choose(eps []*endpoint, tried []*endpoint) *endpoint {
	n := len(eps)
	switch n {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	i, j := twoByWeight(eps)
	a, b := eps[i], eps[j]
	switch ua, ub := a.usable(tried), b.usable(tried); {
	case ua && ub:
		if lighter(b, a) {
			return b
		}
		return a
	case ua:
		return a
	case ub:
		return b
	}
	start := rand.IntN(n)
	for _, avoidTried := range [2]bool{true, false} {
		for k := range n {
			e := eps[(start+k)%n]
			if !e.ejected.Load() && (!avoidTried || !slices.Contains(tried, e)) {
				return e
			}
		}
	}
	return eps[start]
}

// twoByWeight draws two distinct indexes of eps, len(eps) > 1, each with
// probability proportional to its endpoint's weight among those not yet
// drawn.
func twoByWeight(eps []*endpoint) (int, int) {
	var total int64
	for _, e := range eps {
		total += e.weight.Load()
	}
	i := drawByWeight(eps, rand.Int64N(total), -1)
	// A weight raised since total was summed must not leave an empty range.
	j := drawByWeight(eps, rand.Int64N(max(1, total-eps[i].weight.Load())), i)
	return i, j
}

// drawByWeight returns the index whose span of weight holds r, the weights
// laid end to end and skip left out. It falls back to the last index should
// a weight change under it.
func drawByWeight(eps []*endpoint, r int64, skip int) int {
	last := -1
	for k, e := range eps {
		if k == skip {
			continue
		}
		last = k
		if r -= e.weight.Load(); r < 0 {
			return k
		}
	}
	return last
}

// twoOf picks two distinct indexes below n, n > 1.
func twoOf(n int) (int, int) {
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	return i, j
}

// lighter reports whether a, drawn second, is to be taken over b, drawn
// first: b holds more than one call in flight per unit of its weight and a
// holds fewer per unit of weight than b. On a tie the first drawn stays.
func lighter(a, b *endpoint) bool {
	ca, cb := a.calls.Load(), b.calls.Load()
	wa, wb := a.weight.Load(), b.weight.Load()
	return cb > wb && ca*wb < cb*wa
}

func (e *endpoint) usable(tried []*endpoint) bool {
	return !e.ejected.Load() && !slices.Contains(tried, e)
}

// pickSlot chooses, of two of e's connections, the one with fewer calls
// waiting: answers come in order, so a slow call holds up those behind it.
func (e *endpoint) pickSlot() *slot {
	if len(e.slots) == 1 {
		return e.slots[0]
	}
	i, j := twoOf(len(e.slots))
	if e.slots[j].calls.Load() < e.slots[i].calls.Load() {
		return e.slots[j]
	}
	return e.slots[i]
}
