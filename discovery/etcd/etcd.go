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
	w := &watchState{r: r, update: update}
	for ctx.Err() == nil {
		hosts, rev, ok := w.read(ctx)
		if ok && !w.follow(ctx, hosts, rev) {
			return
		}
	}
}

// watchState is one Watch's memory: the last list sent, and the failures
// in a row that its log lines and backoff count.
type watchState struct {
	r        *resolver
	update   func([]discovery.Endpoint)
	last     []discovery.Endpoint
	known    bool
	failures int // reads failed in a row
	broken   int // watches broken in a row, each soon after it began
}

// emit sends the list of hosts if it differs from the last one sent.
func (w *watchState) emit(hosts map[string]discovery.Endpoint) {
	eps := sorted(hosts)
	if !w.known || !slices.Equal(eps, w.last) {
		w.last, w.known = eps, true
		w.update(slices.Clone(eps))
	}
}

// read reads the whole list and sends it. A failed read keeps the last
// list, and backs off before it reports false.
func (w *watchState) read(ctx context.Context) (map[string]discovery.Endpoint, int64, bool) {
	r := w.r
	kvs, rev, err := r.etcd.Range(ctx, []byte(r.prefix))
	if err != nil {
		w.failures++
		if w.failures == 1 || w.failures%10 == 0 {
			r.log.Warn("read registry; keeping the last list", zap.String("prefix", r.prefix),
				zap.Int("failures", w.failures), zap.Error(err))
		}
		backoff.Sleep(ctx, etcdv3.RetryDelay(w.failures))
		return nil, 0, false
	}
	if w.failures > 0 {
		r.log.Info("registry read again", zap.String("prefix", r.prefix), zap.Int("failures", w.failures))
	}
	w.failures = 0
	hosts := make(map[string]discovery.Endpoint, len(kvs))
	for _, kv := range kvs {
		r.apply(hosts, etcdv3.Event{KV: kv})
	}
	w.emit(hosts)
	return hosts, rev, true
}

// follow watches the list from rev on, applying each change to hosts and
// sending the result, until the watch ends; it reports whether to read
// the list again (false once ctx is done).
func (w *watchState) follow(ctx context.Context, hosts map[string]discovery.Endpoint, rev int64) bool {
	r := w.r
	began := time.Now()
	err := r.etcd.Watch(ctx, []byte(r.prefix), rev+1, func() {
		if w.broken > 0 {
			r.log.Info("registry watched again", zap.String("prefix", r.prefix), zap.Int("breaks", w.broken))
		}
	}, func(evs []etcdv3.Event) {
		for _, e := range evs {
			r.apply(hosts, e)
		}
		w.emit(hosts)
	})
	if time.Since(began) > watchSteady {
		w.broken = 0 // the episode is over
	}
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, etcdv3.ErrCompacted):
		r.log.Info("registry watch compacted; reading the list again", zap.String("prefix", r.prefix))
	case errors.Is(err, etcdv3.ErrWatchIdle):
		r.log.Info("registry watch silent; reading the list again", zap.String("prefix", r.prefix))
	default:
		w.broken++
		if w.broken == 1 {
			r.log.Warn("registry watch broke; reading the list again", zap.String("prefix", r.prefix), zap.Error(err))
		}
		return backoff.Sleep(ctx, etcdv3.RetryDelay(w.broken))
	}
	return true
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
