package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/internal/backoff"
)

// DNS re-resolution periods.
const (
	DNSInterval   = 30 * time.Second // between resolutions, ±20 %
	dnsMinRefresh = time.Second      // Refresh resolves at most this often
	dnsTimeout    = 5 * time.Second
	dnsRetryBase  = 100 * time.Millisecond // after a failed lookup, doubling to DNSInterval
)

// dnsResolver follows every A/AAAA record of a name, as of a Kubernetes
// headless Service.
type dnsResolver struct {
	host, port string
	lookup     func(ctx context.Context, host string) ([]string, error)
	interval   time.Duration
	log        *zap.Logger
	refresh    chan struct{}
}

func buildDNS(t Target, log *zap.Logger) (Resolver, error) {
	host, port, err := net.SplitHostPort(t.Name)
	if err != nil {
		return nil, fmt.Errorf("dns target %q: %w", t.Name, err)
	}
	return newDNS(host, port, net.DefaultResolver.LookupHost, DNSInterval, log), nil
}

func newDNS(host, port string, lookup func(context.Context, string) ([]string, error), interval time.Duration, log *zap.Logger) *dnsResolver {
	return &dnsResolver{host: host, port: port, lookup: lookup, interval: interval, log: log, refresh: make(chan struct{}, 1)}
}

// Refresh may be called from any goroutine.
func (d *dnsResolver) Refresh() {
	select {
	case d.refresh <- struct{}{}:
	default:
	}
}

func (d *dnsResolver) Watch(ctx context.Context, update func([]Endpoint)) {
	var last []Endpoint
	known := false
	failures := 0
	for {
		eps, err := d.resolve(ctx)
		if err != nil {
			failures++
			if failures == 1 {
				d.log.Warn("resolve failed; keeping the last list and retrying", zap.String("name", d.host), zap.Error(err))
			}
		} else {
			if failures > 0 {
				d.log.Info("resolved again after failures", zap.String("name", d.host), zap.Int("failures", failures))
				failures = 0
			}
			if !known || !slices.Equal(eps, last) {
				last, known = eps, true
				update(slices.Clone(eps))
			}
		}
		wait := time.NewTimer(d.nextDelay(failures))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		case <-d.refresh:
			wait.Stop()
			if !backoff.Sleep(ctx, dnsMinRefresh) {
				return
			}
		}
	}
}

// nextDelay is the wait before the next lookup: the period, or after the
// n-th failure in a row dnsRetryBase doubled n-1 times, capped at the
// period; either jittered by ±20 %.
func (d *dnsResolver) nextDelay(failures int) time.Duration {
	if failures == 0 {
		return backoff.Jitter(d.interval)
	}
	return backoff.Delay(failures, dnsRetryBase, d.interval)
}

// resolve looks the name up. A name that does not exist is an empty list, as
// a headless Service with no ready pods; any other failure is an error.
func (d *dnsResolver) resolve(ctx context.Context) ([]Endpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	addrs, err := d.lookup(ctx, d.host)
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", d.host, err)
	}
	slices.Sort(addrs)
	eps := make([]Endpoint, 0, len(addrs))
	for _, a := range slices.Compact(addrs) {
		eps = append(eps, Endpoint{Addr: net.JoinHostPort(a, d.port), Weight: 1})
	}
	return eps, nil
}
