// Package etcd resolves etcd:// targets to the rpcd hosts registered in etcd
// (package registry). Importing it registers the scheme:
//
//	import _ "github.com/rpcd/rpcd/discovery/etcd"
//
//	c, err := client.New("etcd://10.0.0.1:2379,10.0.0.2:2379/rpcd", client.Options{})
//
// The target names the etcd members and the service; ?prefix= changes the
// key prefix from registry.DefaultPrefix. The resolver reads every key under
// PREFIX/SERVICE/, then watches them from the next revision, delivering the
// whole list on each change. After a compaction or a broken watch it reads
// the list again and replaces it; watches that keep breaking are retried
// with a growing, jittered backoff and logged once. Not reaching etcd keeps the last list;
// only etcd answering that there are no keys empties it.
//
// It speaks etcd's v3 JSON gateway over net/http: it links no gRPC.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/discovery"
	"github.com/rpcd/rpcd/internal/backoff"
	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/registry"
)

func init() { discovery.Register("etcd", Build) }

// Build makes the resolver of an etcd target; discovery.New calls it.
func Build(t discovery.Target, log *zap.Logger) (discovery.Resolver, error) {
	eps, err := etcdv3.ParseEndpoints(t.Authority)
	if err != nil {
		return nil, fmt.Errorf("etcd target: %w", err)
	}
	if strings.Contains(t.Name, "/") {
		return nil, fmt.Errorf("etcd target: service %q contains '/'", t.Name)
	}
	prefix := registry.DefaultPrefix
	if p := t.Query.Get("prefix"); p != "" {
		prefix = p
	}
	c, err := etcdv3.New(eps)
	if err != nil {
		return nil, fmt.Errorf("etcd target: %w", err)
	}
	return &resolver{etcd: c, prefix: path.Join(prefix, t.Name) + "/", log: log}, nil
}

// watchSteady is how long a watch must have run, before it broke, for the
// next break to begin a new episode: backoff from the start, and a warning.
const watchSteady = 10 * time.Second

// resolver follows the keys of one service.
type resolver struct {
	etcd   *etcdv3.Client
	prefix string // PREFIX/SERVICE/
	log    *zap.Logger
}

// Refresh does nothing: the watch delivers every change as it happens.
func (*resolver) Refresh() {}

// Watch reads the list, then follows it, until ctx is done.
func (r *resolver) Watch(ctx context.Context, update func([]discovery.Endpoint)) {
	var last []discovery.Endpoint
	known := false
	emit := func(hosts map[string]discovery.Endpoint) {
		eps := sorted(hosts)
		if !known || !slices.Equal(eps, last) {
			last, known = eps, true
			update(slices.Clone(eps))
		}
	}
	failures := 0 // reads failed in a row
	broken := 0   // watches broken in a row, each soon after it began
	for ctx.Err() == nil {
		kvs, rev, err := r.etcd.Range(ctx, []byte(r.prefix))
		if err != nil {
			failures++
			if failures == 1 || failures%10 == 0 {
				r.log.Warn("read registry; keeping the last list", zap.String("prefix", r.prefix),
					zap.Int("failures", failures), zap.Error(err))
			}
			if !backoff.Sleep(ctx, etcdv3.RetryDelay(failures)) {
				return
			}
			continue
		}
		if failures > 0 {
			r.log.Info("registry read again", zap.String("prefix", r.prefix), zap.Int("failures", failures))
		}
		failures = 0
		hosts := make(map[string]discovery.Endpoint, len(kvs))
		for _, kv := range kvs {
			r.apply(hosts, etcdv3.Event{KV: kv})
		}
		emit(hosts)
		began := time.Now()
		err = r.etcd.Watch(ctx, []byte(r.prefix), rev+1, func() {
			if broken > 0 {
				r.log.Info("registry watched again", zap.String("prefix", r.prefix), zap.Int("breaks", broken))
			}
		}, func(evs []etcdv3.Event) {
			for _, e := range evs {
				r.apply(hosts, e)
			}
			emit(hosts)
		})
		if time.Since(began) > watchSteady {
			broken = 0 // the episode is over
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, etcdv3.ErrCompacted):
			r.log.Info("registry watch compacted; reading the list again", zap.String("prefix", r.prefix))
		case errors.Is(err, etcdv3.ErrWatchIdle):
			r.log.Info("registry watch silent; reading the list again", zap.String("prefix", r.prefix))
		default:
			broken++
			if broken == 1 {
				r.log.Warn("registry watch broke; reading the list again", zap.String("prefix", r.prefix), zap.Error(err))
			}
			if !backoff.Sleep(ctx, etcdv3.RetryDelay(broken)) {
				return
			}
		}
	}
}

// apply records one change of a host's key in hosts.
func (r *resolver) apply(hosts map[string]discovery.Endpoint, e etcdv3.Event) {
	key := string(e.KV.Key)
	if e.Delete {
		delete(hosts, key)
		return
	}
	var rec registry.Record
	if err := json.Unmarshal(e.KV.Value, &rec); err != nil || rec.Addr == "" {
		r.log.Warn("ignoring a registry key that holds no record", zap.String("key", key), zap.Error(err))
		delete(hosts, key)
		return
	}
	hosts[key] = discovery.Endpoint{Addr: rec.Addr, Weight: max(rec.Weight, 1)}
}

// sorted returns the endpoints of hosts by address, one per address.
func sorted(hosts map[string]discovery.Endpoint) []discovery.Endpoint {
	eps := make([]discovery.Endpoint, 0, len(hosts))
	for _, ep := range hosts {
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b discovery.Endpoint) int { return strings.Compare(a.Addr, b.Addr) })
	return slices.CompactFunc(eps, func(a, b discovery.Endpoint) bool { return a.Addr == b.Addr })
}
