package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/internal/backoff"
	"github.com/rpcd/rpcd/internal/etcdv3"
)

// Defaults for Config's zero values.
const (
	DefaultPrefix = "/rpcd"
	DefaultTTL    = 5 * time.Second
)

// Record is the value of a host's key.
type Record struct {
	Addr      string    `json:"addr"`      // host:port clients dial
	ByteOrder string    `json:"byteorder"` // of the length prefix: little or big
	Weight    int       `json:"weight"`    // the host's worker count
	Version   string    `json:"version"`   // of the rpcd binary
	Started   time.Time `json:"started"`   // when the master started
}

// Key returns the key of the host at addr: prefix/service/addr.
func Key(prefix, service, addr string) string {
	return path.Join(prefix, service, addr)
}

// Config is where and how a Registrar registers.
type Config struct {
	Etcd []string      // etcd members, host:port
	Key  string        // see Key
	TTL  time.Duration // of the lease; 0 means DefaultTTL
	// Lease is a lease another process kept alive for this key and handed
	// over; 0 grants a new one.
	Lease int64
}

// Registrar keeps one host's key in etcd; see the package doc. Its methods
// may be called from any goroutine.
type Registrar struct {
	cfg  Config
	etcd *etcdv3.Client
	log  *zap.Logger

	mu      sync.Mutex
	rec     Record
	changed chan struct{} // rec changed since the last write
	lease   atomic.Int64

	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Registrar of rec under cfg; nothing is written until Start.
func New(cfg Config, rec Record, log *zap.Logger) (*Registrar, error) {
	c, err := etcdv3.New(cfg.Etcd)
	if err != nil {
		return nil, fmt.Errorf("make registrar: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("make registrar: lease TTL %v is under 1s", cfg.TTL)
	}
	if log == nil {
		log = zap.NewNop()
	}
	r := &Registrar{cfg: cfg, etcd: c, log: log.With(zap.String("key", cfg.Key)), rec: rec,
		changed: make(chan struct{}, 1), done: make(chan struct{})}
	r.lease.Store(cfg.Lease)
	return r, nil
}

// Start begins keeping the key in etcd. Later calls do nothing.
func (r *Registrar) Start() {
	r.start.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go r.run(ctx)
	})
}

// Update writes rec as the key's new value, in place, as soon as etcd
// takes it.
func (r *Registrar) Update(rec Record) {
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Record returns the value last given.
func (r *Registrar) Record() Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec
}

// Lease returns the lease the key is written under, 0 before one is
// granted.
func (r *Registrar) Lease() int64 { return r.lease.Load() }

// Abandon stops keeping the key without revoking its lease, which another
// process may go on keeping alive, and waits for that. It is what an
// upgrade does before the new image takes the lease over.
func (r *Registrar) Abandon() {
	r.start.Do(func() { close(r.done) })
	if r.cancel != nil {
		r.cancel()
	}
	<-r.done
}

// Deregister stops keeping the key and revokes its lease, which deletes
// the key, within ctx.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.Abandon()
	lease := r.lease.Load()
	if lease == 0 {
		return nil
	}
	if err := r.etcd.Revoke(ctx, lease); err != nil && !errors.Is(err, etcdv3.ErrLeaseNotFound) {
		return fmt.Errorf("deregister: %w", err)
	}
	return nil
}

// run keeps the key until ctx ends: it writes the key whenever it is not
// known to hold the last record under a live lease, and renews the lease a
// third of the TTL after it was granted or last renewed (a write does not
// renew it). A handed-over lease is renewed at once.
func (r *Registrar) run(ctx context.Context) {
	defer close(r.done)
	deleted := make(chan struct{}, 1)
	watching := false
	written := false
	failures := 0
	renew := time.NewTimer(0)
	defer renew.Stop()
	for {
		if !written {
			rev, granted, err := r.write(ctx)
			if ctx.Err() != nil {
				return
			}
			if granted {
				resetTimer(renew, r.cfg.TTL/3)
			}
			if err != nil {
				failures++
				if !backoff.Sleep(ctx, etcdv3.RetryDelay(failures)) {
					return
				}
				continue
			}
			if failures > 0 {
				r.log.Info("registered again after failures", zap.Int("failures", failures))
			}
			failures, written = 0, true
			if !watching {
				watching = true
				go r.watchKey(ctx, rev+1, deleted)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
			written = false
		case <-deleted:
			r.log.Warn("registration deleted from etcd; writing it again")
			written = false
		case <-renew.C:
			written = r.renew(ctx, renew, &failures)
		}
	}
}

// write makes sure of a lease and writes the record under it, returning
// the revision of the write and whether it granted a new lease. A lease
// etcd no longer knows is dropped, for the next write to replace.
func (r *Registrar) write(ctx context.Context) (rev int64, granted bool, err error) {
	lease := r.lease.Load()
	if lease == 0 {
		if lease, err = r.etcd.Grant(ctx, r.cfg.TTL); err != nil {
			r.log.Warn("etcd unreachable; retrying", zap.Error(err))
			return 0, false, err
		}
		granted = true
		r.lease.Store(lease)
		r.log.Info("lease granted", zap.String("lease", fmt.Sprintf("%x", lease)), zap.Duration("ttl", r.cfg.TTL))
	}
	rec := r.Record()
	value, err := json.Marshal(rec)
	if err != nil {
		return 0, granted, fmt.Errorf("encode record: %w", err)
	}
	rev, err = r.etcd.Put(ctx, []byte(r.cfg.Key), value, lease)
	if errors.Is(err, etcdv3.ErrLeaseNotFound) {
		r.log.Warn("lease expired; granting a new one", zap.String("lease", fmt.Sprintf("%x", lease)))
		r.lease.CompareAndSwap(lease, 0)
		return 0, granted, err
	}
	if err != nil {
		r.log.Warn("etcd unreachable; retrying", zap.Error(err))
		return 0, granted, err
	}
	r.log.Info("registered", zap.String("addr", rec.Addr), zap.Int("weight", rec.Weight),
		zap.String("lease", fmt.Sprintf("%x", lease)), zap.Int64("revision", rev))
	return rev, granted, nil
}

// renew renews the lease and sets the timer for the next renewal. It
// reports whether the key still stands: false when the lease has expired,
// so that run writes it again under a new one.
func (r *Registrar) renew(ctx context.Context, t *time.Timer, failures *int) bool {
	lease := r.lease.Load()
	if lease == 0 {
		return false // the next write grants one
	}
	_, err := r.etcd.KeepAlive(ctx, lease)
	switch {
	case err == nil:
		if *failures > 0 {
			r.log.Info("lease renewed after failures", zap.Int("failures", *failures))
		}
		*failures = 0
		resetTimer(t, r.cfg.TTL/3)
		return true
	case errors.Is(err, etcdv3.ErrLeaseNotFound):
		r.log.Warn("lease expired; granting a new one", zap.String("lease", fmt.Sprintf("%x", lease)))
		r.lease.CompareAndSwap(lease, 0)
		return false
	default:
		*failures++
		if *failures == 1 || *failures%10 == 0 {
			r.log.Warn("renew lease failed; retrying", zap.Int("failures", *failures), zap.Error(err))
		}
		resetTimer(t, etcdv3.RetryDelay(*failures))
		return true
	}
}

// watchKey signals deleted each time the key is deleted, from revision rev
// on, until ctx ends. A broken watch is started again where it broke; a
// compacted one signals deleted, to be safe, and starts at the present.
func (r *Registrar) watchKey(ctx context.Context, rev int64, deleted chan<- struct{}) {
	key := []byte(r.cfg.Key)
	failures := 0
	for ctx.Err() == nil {
		err := r.etcd.Watch(ctx, key, rev, func() { failures = 0 }, func(evs []etcdv3.Event) {
			for _, e := range evs {
				rev = max(rev, e.KV.ModRevision+1)
				if e.Delete && string(e.KV.Key) == r.cfg.Key {
					signal(deleted)
				}
			}
		})
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, etcdv3.ErrCompacted) {
			rev = 0 // the present
			signal(deleted)
			continue
		}
		failures++
		r.log.Debug("watch of own key broke; watching again", zap.Error(err))
		if !backoff.Sleep(ctx, etcdv3.RetryDelay(failures)) {
			return
		}
	}
}

func signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}
