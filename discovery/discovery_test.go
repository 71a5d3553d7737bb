package discovery

import (
	"context"
	"errors"
	"net"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/rpcd/rpcd/internal/waitfor"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		want    Target
		wantErr bool
	}{
		{name: "one address", target: "127.0.0.1:8080", want: Target{Scheme: "static", Name: "127.0.0.1:8080"}},
		{name: "a list", target: "a:1, b:2", want: Target{Scheme: "static", Name: "a:1, b:2"}},
		{name: "no port", target: "localhost", wantErr: true},
		{name: "empty entry", target: "a:1,,b:2", wantErr: true},
		{name: "dns", target: "dns:///rpcd.ns.svc:8080",
			want: Target{Scheme: "dns", Name: "rpcd.ns.svc:8080", Query: url.Values{}}},
		{name: "etcd, several members, prefix", target: "etcd://10.0.0.1:2379,10.0.0.2:2379/rpcd?prefix=/x",
			want: Target{Scheme: "etcd", Authority: "10.0.0.1:2379,10.0.0.2:2379", Name: "rpcd",
				Query: url.Values{"prefix": {"/x"}}}},
		{name: "etcd, IPv6 members", target: "etcd://[::1]:2379,[::1]:2380/rpcd",
			want: Target{Scheme: "etcd", Authority: "[::1]:2379,[::1]:2380", Name: "rpcd", Query: url.Values{}}},
		{name: "nothing after the registry", target: "etcd://10.0.0.1:2379/", wantErr: true},
		{name: "bad url", target: "dns://%zz/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTarget(tt.target)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseTarget(%q) error %v, want error %v", tt.target, err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseTarget(%q) = %+v, want %+v", tt.target, got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		target  string
		wantErr bool
	}{
		{target: "127.0.0.1:1,127.0.0.2:1"},
		{target: "dns:///localhost:1"},
		{target: "dns:///localhost", wantErr: true}, // no port
		{target: "nosuch:///x", wantErr: true},
	}
	for _, tt := range tests {
		if _, err := New(tt.target, nil); (err != nil) != tt.wantErr {
			t.Errorf("New(%q) error %v, want error %v", tt.target, err, tt.wantErr)
		}
	}
}

// watchOnce runs r's Watch until it has delivered n lists.
type recorder struct {
	mu    sync.Mutex
	lists [][]Endpoint
}

func (r *recorder) update(eps []Endpoint) {
	r.mu.Lock()
	r.lists = append(r.lists, eps)
	r.mu.Unlock()
}

func (r *recorder) got() [][]Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lists)
}

func watch(t *testing.T, r Resolver) *recorder {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Watch(ctx, rec.update) }()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

func TestStatic(t *testing.T) {
	r, err := New("127.0.0.1:1, 127.0.0.2:2", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := watch(t, r)
	want := []Endpoint{{Addr: "127.0.0.1:1", Weight: 1}, {Addr: "127.0.0.2:2", Weight: 1}}
	waitfor.Until(t, time.Second, "the list", func() bool { return len(rec.got()) == 1 })
	r.Refresh()
	if got := rec.got(); len(got) != 1 || !slices.Equal(got[0], want) {
		t.Fatalf("static delivered %v, want once %v", got, want)
	}
}

// localhost is in /etc/hosts: the real resolver answers without a network.
func TestDNSLocalhost(t *testing.T) {
	r, err := New("dns:///localhost:8080", zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := watch(t, r)
	waitfor.Until(t, 5*time.Second, "the list", func() bool { return len(rec.got()) > 0 })
	eps := rec.got()[0]
	if !slices.ContainsFunc(eps, func(e Endpoint) bool { return e.Addr == "127.0.0.1:8080" || e.Addr == "[::1]:8080" }) {
		t.Fatalf("localhost resolved to %v", eps)
	}
}

// fakeLookup answers from a table that tests change.
type fakeLookup struct {
	mu    sync.Mutex
	addrs []string
	err   error
	calls atomic.Int32
}

func (f *fakeLookup) set(addrs []string, err error) {
	f.mu.Lock()
	f.addrs, f.err = addrs, err
	f.mu.Unlock()
}

func (f *fakeLookup) lookup(context.Context, string) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs), f.err
}

func TestDNSRefresh(t *testing.T) {
	notFound := &net.DNSError{Err: "no such host", Name: "svc", IsNotFound: true}
	steps := []struct {
		name  string
		addrs []string
		err   error
		want  []Endpoint // nil: no new list
	}{
		{name: "sorted, without duplicates", addrs: []string{"10.0.0.2", "10.0.0.1", "10.0.0.2"},
			want: []Endpoint{{Addr: "10.0.0.1:80", Weight: 1}, {Addr: "10.0.0.2:80", Weight: 1}}},
		{name: "unchanged is not delivered", addrs: []string{"10.0.0.1", "10.0.0.2"}},
		{name: "a failure keeps the list", err: errors.New("server misbehaving")},
		{name: "a change", addrs: []string{"10.0.0.3"}, want: []Endpoint{{Addr: "10.0.0.3:80", Weight: 1}}},
		{name: "no such name empties it", err: notFound, want: []Endpoint{}},
	}
	f := &fakeLookup{}
	f.set(steps[0].addrs, nil)
	r := newDNS("svc", "80", f.lookup, time.Hour, zap.NewNop())
	rec := watch(t, r)
	delivered := 0
	for i, st := range steps {
		if i > 0 {
			f.set(st.addrs, st.err)
			calls := f.calls.Load()
			r.Refresh()
			waitfor.Until(t, 3*time.Second, st.name+": a lookup after Refresh", func() bool { return f.calls.Load() > calls })
		} else {
			waitfor.Until(t, time.Second, "the first lookup", func() bool { return f.calls.Load() > 0 })
		}
		if st.want != nil {
			delivered++
			waitfor.Until(t, time.Second, st.name, func() bool { return len(rec.got()) == delivered })
			if got := rec.got()[delivered-1]; !slices.Equal(got, st.want) {
				t.Fatalf("%s: delivered %v, want %v", st.name, got, st.want)
			}
		} else if n := len(rec.got()); n != delivered {
			t.Fatalf("%s: %d lists delivered, want %d", st.name, n, delivered)
		}
	}
}

// A failed lookup is retried within a fraction of a second, not after the
// period: the list arrives once the name resolves again.
func TestDNSRetriesFailureSoon(t *testing.T) {
	f := &fakeLookup{}
	f.set(nil, errors.New("server misbehaving"))
	r := newDNS("svc", "80", f.lookup, time.Hour, zap.NewNop())
	rec := watch(t, r)
	waitfor.Until(t, 3*time.Second, "three failed lookups", func() bool { return f.calls.Load() >= 3 })
	f.set([]string{"10.0.0.1"}, nil)
	waitfor.Until(t, 5*time.Second, "the list after the lookups failed", func() bool { return len(rec.got()) == 1 })
	if got, want := rec.got()[0], []Endpoint{{Addr: "10.0.0.1:80", Weight: 1}}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestDNSNextDelay(t *testing.T) {
	d := newDNS("svc", "80", nil, 30*time.Second, zap.NewNop())
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 30 * time.Second},
		{1, 100 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{20, 30 * time.Second},
		{100, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := d.nextDelay(tt.failures); got < tt.want*8/10 || got > tt.want*12/10 {
			t.Errorf("nextDelay(%d) = %v, want %v ±20 %%", tt.failures, got, tt.want)
		}
	}
}
