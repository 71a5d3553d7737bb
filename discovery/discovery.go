package discovery

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Endpoint is one server behind a target.
type Endpoint struct {
	Addr   string // host:port
	Weight int    // share of calls relative to the others; 0 counts as 1
}

// Resolver produces the endpoints of one target.
type Resolver interface {
	// Watch calls update with the whole list as soon as it is known and
	// again on every change, until ctx is done. See the package doc for
	// when the list may be empty. update is never called concurrently.
	Watch(ctx context.Context, update func([]Endpoint))
	// Refresh asks for a new resolution soon, after connection failures.
	// It may be called from any goroutine, and may do nothing.
	Refresh()
}

// Target is a parsed target: Scheme://Authority/Name.
type Target struct {
	Scheme    string
	Authority string // the registry's addresses, comma-separated; may be empty
	Name      string // what to resolve there: a service, or name:port
	Query     url.Values
}

// Builder makes the Resolver of a target of its scheme. log is never nil.
type Builder func(t Target, log *zap.Logger) (Resolver, error)

var (
	buildersMu sync.RWMutex
	builders   = map[string]Builder{"dns": buildDNS}
)

// Register makes targets of scheme resolve through b. It is meant to be
// called from init functions; a later registration of a scheme wins.
func Register(scheme string, b Builder) {
	buildersMu.Lock()
	defer buildersMu.Unlock()
	builders[scheme] = b
}

// ParseTarget splits target. Without "://" it is a comma-separated list of
// host:port, scheme "static".
func ParseTarget(target string) (Target, error) {
	if !strings.Contains(target, "://") {
		if _, err := staticEndpoints(target); err != nil {
			return Target{}, err
		}
		return Target{Scheme: "static", Name: target}, nil
	}
	// The authority may list several hosts, IPv6 ones in brackets, which
	// url.Parse refuses as one host: each is checked on its own.
	scheme, rest, _ := strings.Cut(target, "://")
	authority, rest := rest, ""
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	for host := range strings.SplitSeq(authority, ",") {
		if _, err := url.Parse("//" + host); err != nil {
			return Target{}, fmt.Errorf("parse target: %w", err)
		}
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil {
		return Target{}, fmt.Errorf("parse target: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return Target{}, fmt.Errorf("target %q names nothing after the registry", target)
	}
	return Target{Scheme: u.Scheme, Authority: authority, Name: name, Query: u.Query()}, nil
}

// New returns the Resolver for target.
func New(target string, log *zap.Logger) (Resolver, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if t.Scheme == "static" {
		eps, _ := staticEndpoints(t.Name)
		return Static(eps...), nil
	}
	buildersMu.RLock()
	b, ok := builders[t.Scheme]
	buildersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("target %q: no resolver for scheme %q (the etcd scheme needs an import of discovery/etcd)", target, t.Scheme)
	}
	r, err := b(t, log)
	if err != nil {
		return nil, fmt.Errorf("build %s resolver: %w", t.Scheme, err)
	}
	return r, nil
}
