//go:build linux

package cmd

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/internal/etcdv3"
	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/registry"
)

// leaseEnv carries the registration's lease (hex) to the image an upgrade
// executes, which keeps it alive in turn.
const leaseEnv = "RPCD_REGISTRY_LEASE"

// registryOptions are the flags of the master's registration in etcd.
type registryOptions struct {
	registry        string
	prefix          string
	service         string
	advertise       string
	ttl             time.Duration
	deregisterDelay time.Duration
}

func addRegistryFlags(fs *flag.FlagSet, o *registryOptions) {
	fs.StringVar(&o.registry, "registry", "", "register this host in etcd: `etcd://host:port[,host:port...]`; clients find it with an etcd:// target (empty: no registration)")
	fs.StringVar(&o.prefix, "registry-prefix", registry.DefaultPrefix, "key prefix of the registration: the key is PREFIX/SERVICE/ADVERTISE")
	fs.StringVar(&o.service, "service", "rpcd", "service `name` this host registers under")
	fs.StringVar(&o.advertise, "advertise", "", "`host:port` clients dial, registered in etcd (default: -listen, which must then not be a wildcard)")
	fs.DurationVar(&o.ttl, "registry-ttl", registry.DefaultTTL, "lease TTL of the registration: a host that dies is gone from etcd this long after")
	fs.DurationVar(&o.deregisterDelay, "deregister-delay", time.Second, "on a graceful stop, how long the workers serve on after the registration is revoked, before they drain")
}

// check validates the registration flags against the listen address.
func (o *registryOptions) check(listen string, shutdownTimeout time.Duration) error {
	if o.registry == "" {
		return nil
	}
	if _, err := o.etcdEndpoints(); err != nil {
		return err
	}
	switch {
	case o.service == "" || strings.Contains(o.service, "/"):
		return fmt.Errorf("-service=%q: want a name without '/'", o.service)
	case !strings.HasPrefix(o.prefix, "/"):
		return fmt.Errorf("-registry-prefix=%q: want a key prefix starting with '/'", o.prefix)
	case o.ttl < 2*time.Second || o.ttl%time.Second != 0:
		return fmt.Errorf("-registry-ttl=%v: want whole seconds, at least 2s", o.ttl)
	case o.deregisterDelay < 0 || o.deregisterDelay > shutdownTimeout/2:
		return fmt.Errorf("-deregister-delay=%v: want 0 up to half of -shutdown-timeout (%v)", o.deregisterDelay, shutdownTimeout)
	}
	_, err := o.advertiseAddr(listen)
	return err
}

// etcdEndpoints parses -registry.
func (o *registryOptions) etcdEndpoints() ([]string, error) {
	list, ok := strings.CutPrefix(o.registry, "etcd://")
	if !ok {
		return nil, fmt.Errorf("-registry=%s: want etcd://host:port[,host:port...]", o.registry)
	}
	eps, err := etcdv3.ParseEndpoints(strings.TrimSuffix(list, "/"))
	if err != nil {
		return nil, fmt.Errorf("-registry: %w", err)
	}
	return eps, nil
}

// advertiseAddr is the address to register: -advertise, else -listen
// unless its host is a wildcard. Port 0 from -listen stands for the port
// the master binds.
func (o *registryOptions) advertiseAddr(listen string) (string, error) {
	addr := o.advertise
	if addr == "" {
		addr = listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-advertise=%s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if o.advertise == "" {
			return "", fmt.Errorf("-listen=%s is a wildcard: -registry needs -advertise=host:port", listen)
		}
		return "", fmt.Errorf("-advertise=%s: want the address clients dial, not a wildcard", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || n == 0 && o.advertise != "" {
		return "", fmt.Errorf("-advertise=%s: want a port from 1 to 65535", addr)
	}
	return addr, nil
}

// registration keeps the master's host registered in etcd through the
// master's hooks, which all run on the master's loop goroutine. A nil
// *registration does nothing.
type registration struct {
	cfg   registry.Config // Key set once the address is known
	rec   registry.Record
	key   func(addr string) string
	bound func() net.Addr // the master's address, for a -listen port 0
	r     *registry.Registrar
	log   *zap.Logger
	delay time.Duration
	began atomic.Bool   // the deregistration has begun
	done  chan struct{} // closed once it has ended
	// release is closed delay after the deregistration has ended: the
	// workers may then be told to stop (master.Hooks.HoldStop).
	release chan struct{}
}

// newRegistration returns the registration s asks for, nil for none. It
// takes over the lease of the image that executed this one, from leaseEnv,
// and clears the variable so that workers do not inherit it. bound gives
// the address the master has bound.
func newRegistration(s *settings, bound func() net.Addr, log *zap.Logger) (*registration, error) {
	inherited := os.Getenv(leaseEnv)
	os.Unsetenv(leaseEnv) //nolint:errcheck // cannot fail for a valid name
	o := &s.reg
	if o.registry == "" {
		return nil, nil
	}
	eps, _ := o.etcdEndpoints() // checked
	addr, err := o.advertiseAddr(s.listen)
	if err != nil {
		return nil, err
	}
	var lease int64
	if inherited != "" && os.Getenv(master.InheritEnv) != "" {
		if lease, err = strconv.ParseInt(inherited, 16, 64); err != nil {
			log.Warn("ignoring a bad inherited lease", zap.String("lease", inherited))
			lease = 0
		}
	}
	log = log.With(zap.String("registry", o.registry))
	if lease != 0 {
		log.Info("taking over the registration lease", zap.String("lease", inherited))
	}
	return &registration{
		cfg:     registry.Config{Etcd: eps, TTL: o.ttl, Lease: lease},
		rec:     registry.Record{Addr: addr, ByteOrder: s.byteOrder, Version: version(), Started: time.Now().UTC()},
		key:     func(addr string) string { return registry.Key(o.prefix, o.service, addr) },
		bound:   bound,
		log:     log,
		delay:   o.deregisterDelay,
		done:    make(chan struct{}),
		release: make(chan struct{}),
	}, nil
}

// wire adds the registration to the master's configuration: register with
// the slot count as weight once ready, write it again on every change and
// reload, revoke it when a stop begins and hold the workers' SIGTERM back
// until the revoke has returned and -deregister-delay has passed (at most
// the revoke's timeout and the delay), and hand the lease to an upgraded
// image.
func (g *registration) wire(cfg *master.Config) {
	if g == nil {
		return
	}
	h := &cfg.Hooks
	h.OnWorkers = chain1(h.OnWorkers, g.setWeight)
	h.OnReloaded = chain1(h.OnReloaded, g.reloaded)
	h.OnStopping = chain0(h.OnStopping, g.deregister)
	h.HoldStop = func() <-chan struct{} { return g.release }
	cfg.StopDelay = g.revokeTimeout() + g.delay
	cfg.UpgradeEnv = g.upgradeEnv
}

// setWeight registers the host once the master is ready, then updates its
// weight in place (master.Hooks.OnWorkers).
func (g *registration) setWeight(workers int) {
	if g.r == nil {
		g.start(workers)
		return
	}
	rec := g.r.Record()
	rec.Weight = workers
	g.r.Update(rec)
}

// start makes the registrar, now that the bound address is known, and
// starts it.
func (g *registration) start(workers int) {
	if _, port, _ := net.SplitHostPort(g.rec.Addr); port == "0" {
		host, _, _ := net.SplitHostPort(g.rec.Addr)
		_, port, _ = net.SplitHostPort(g.bound().String())
		g.rec.Addr = net.JoinHostPort(host, port)
	}
	g.rec.Weight = workers
	g.cfg.Key = g.key(g.rec.Addr)
	r, err := registry.New(g.cfg, g.rec, g.log)
	if err != nil {
		g.log.Error("registration failed; serving unregistered", zap.Error(err))
		return
	}
	g.r = r
	r.Start()
}

// reloaded writes the record again in place after a reload that took
// (master.Hooks.OnReloaded).
func (g *registration) reloaded(err error) {
	if err == nil && g.r != nil {
		g.r.Update(g.r.Record())
	}
}

// revokeTimeout bounds the revoke of the lease on a stop.
func (g *registration) revokeTimeout() time.Duration { return max(g.delay, time.Second) }

// deregister revokes the lease within revokeTimeout, then releases the
// stop -deregister-delay later, without holding up the master's loop
// (master.Hooks.OnStopping). A host that never registered only waits the
// delay.
func (g *registration) deregister() {
	g.began.Store(true)
	r := g.r
	go func() {
		defer close(g.release)
		g.revoke(r)
		time.Sleep(g.delay) // the clients see the key go and move their calls
	}()
}

// revoke revokes r's lease, if r is set, and closes done.
func (g *registration) revoke(r *registry.Registrar) {
	defer close(g.done)
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.revokeTimeout())
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		g.log.Warn("deregistration failed; the key goes when its lease expires", zap.Error(err))
		return
	}
	g.log.Info("deregistered")
}

// wait waits for a deregistration that has begun to end.
func (g *registration) wait() {
	if g == nil || !g.began.Load() {
		return
	}
	select {
	case <-g.done:
	case <-time.After(g.revokeTimeout()):
	}
}

// upgradeEnv hands the lease to the image an upgrade executes
// (master.Config.UpgradeEnv).
func (g *registration) upgradeEnv() []string {
	if g.r == nil {
		return nil
	}
	lease := g.r.Lease()
	if lease == 0 {
		return nil
	}
	return []string{leaseEnv + "=" + strconv.FormatInt(lease, 16)}
}

func chain0(a, b func()) func() {
	if a == nil {
		return b
	}
	return func() { a(); b() }
}

func chain1[T any](a, b func(T)) func(T) {
	if a == nil {
		return b
	}
	return func(v T) { a(v); b(v) }
}
