// Package etcdv3 speaks to etcd through its v3 JSON gateway (etcd 3.4 and
// later serve it under /v3/) with net/http alone: lease grant, keepalive and
// revoke, put, prefix range, and prefix watch. It keeps gRPC out of the
// programs that use it. Keys and values are bytes on the wire (base64 in the
// JSON); int64 fields travel as decimal strings.
//
// A Client tries its endpoints in turn, starting with the one that answered
// last, and gives each its own timeout, so that a member that accepts and
// never answers costs one timeout, not the request. A watch that hears
// nothing, not even a progress notification, for WatchIdle ends with
// ErrWatchIdle. A Client is safe for use from several goroutines.
package etcdv3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rpcd/rpcd/internal/backoff"
)

// ErrLeaseNotFound is the answer about a lease that has expired or was
// revoked.
var ErrLeaseNotFound = errors.New("etcd: lease not found")

// ErrCompacted ends a watch whose start revision has been compacted away.
var ErrCompacted = errors.New("etcd: watch revision compacted")

// ErrWatchIdle ends a watch that heard nothing from etcd for the client's
// WatchIdle; the stream is taken for broken and may be started again.
var ErrWatchIdle = errors.New("etcd: watch silent")

// requestTimeout bounds each member's answer to a unary request, and the
// time a member has to confirm a watch.
const requestTimeout = 2 * time.Second

// DefaultWatchIdle is WatchIdle unless set: three of etcd's default
// progress notification intervals (10 min).
const DefaultWatchIdle = 30 * time.Minute

// Client is an etcd v3 JSON gateway client.
type Client struct {
	// WatchIdle is how long a watch may hear nothing before it ends with
	// ErrWatchIdle. Watches ask for progress notifications, so it should
	// exceed etcd's --experimental-watch-progress-notify-interval. Set it
	// before the first Watch.
	WatchIdle time.Duration

	endpoints []string // host:port
	http      *http.Client
	next      atomic.Int32 // the endpoint to try first
}

// New returns a client of the etcd members at endpoints (host:port).
func New(endpoints []string) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcd client: no endpoint")
	}
	return &Client{WatchIdle: DefaultWatchIdle, endpoints: endpoints, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}}, nil
}

// ParseEndpoints splits a comma-separated list of host:port.
func ParseEndpoints(list string) ([]string, error) {
	var eps []string
	for ep := range strings.SplitSeq(list, ",") {
		ep = strings.TrimSpace(ep)
		if i := strings.LastIndexByte(ep, ':'); i <= 0 || i == len(ep)-1 {
			return nil, fmt.Errorf("etcd endpoint %q: want host:port", ep)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// KV is one key and its value.
type KV struct {
	Key, Value  []byte
	ModRevision int64
	Lease       int64
}

// Event is one change a watch saw.
type Event struct {
	Delete bool // else a put
	KV     KV
}

// PrefixEnd returns the end of the range of keys that start with prefix.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// Grant makes a lease of ttl and returns its ID.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	var out struct {
		ID  int64 `json:"ID,string"`
		TTL int64 `json:"TTL,string"`
	}
	in := map[string]any{"TTL": strconv.FormatInt(int64(ttl/time.Second), 10)}
	if err := c.unary(ctx, "/v3/lease/grant", in, &out); err != nil {
		return 0, fmt.Errorf("grant lease: %w", err)
	}
	return out.ID, nil
}

// KeepAlive renews lease once and returns its remaining TTL. A lease that
// has expired yields ErrLeaseNotFound.
func (c *Client) KeepAlive(ctx context.Context, lease int64) (time.Duration, error) {
	var out struct {
		Result struct {
			TTL int64 `json:"TTL,string"`
		} `json:"result"`
		Error *gatewayError `json:"error"`
	}
	if err := c.unary(ctx, "/v3/lease/keepalive", map[string]any{"ID": strconv.FormatInt(lease, 10)}, &out); err != nil {
		return 0, fmt.Errorf("keep lease %x alive: %w", lease, err)
	}
	if out.Error != nil {
		return 0, fmt.Errorf("keep lease %x alive: %w", lease, out.Error)
	}
	if out.Result.TTL <= 0 {
		return 0, fmt.Errorf("keep lease %x alive: %w", lease, ErrLeaseNotFound)
	}
	return time.Duration(out.Result.TTL) * time.Second, nil
}

// Revoke ends lease and deletes its keys.
func (c *Client) Revoke(ctx context.Context, lease int64) error {
	if err := c.unary(ctx, "/v3/lease/revoke", map[string]any{"ID": strconv.FormatInt(lease, 10)}, nil); err != nil {
		return fmt.Errorf("revoke lease %x: %w", lease, err)
	}
	return nil
}

// Put sets key to value under lease (0 for none) and returns the revision
// of the change.
func (c *Client) Put(ctx context.Context, key, value []byte, lease int64) (int64, error) {
	in := map[string]any{"key": key, "value": value}
	if lease != 0 {
		in["lease"] = strconv.FormatInt(lease, 10)
	}
	var out struct {
		Header header `json:"header"`
	}
	if err := c.unary(ctx, "/v3/kv/put", in, &out); err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return out.Header.Revision, nil
}

// Delete deletes key.
func (c *Client) Delete(ctx context.Context, key []byte) error {
	if err := c.unary(ctx, "/v3/kv/deleterange", map[string]any{"key": key}, nil); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Range returns the keys that start with prefix and the store's revision.
func (c *Client) Range(ctx context.Context, prefix []byte) ([]KV, int64, error) {
	var out struct {
		Header header   `json:"header"`
		KVs    []wireKV `json:"kvs"`
	}
	if err := c.unary(ctx, "/v3/kv/range", map[string]any{"key": prefix, "range_end": PrefixEnd(prefix)}, &out); err != nil {
		return nil, 0, fmt.Errorf("range %s: %w", prefix, err)
	}
	kvs := make([]KV, len(out.KVs))
	for i, kv := range out.KVs {
		kvs[i] = kv.kv()
	}
	return kvs, out.Header.Revision, nil
}

// Watch follows the keys that start with prefix from revision rev and
// calls fn with each batch of events, until ctx is done or the stream
// breaks. It returns ErrCompacted when rev is no longer in the store,
// ErrWatchIdle when the stream fell silent, and another error when the
// stream could not start or broke. created is called once the watch is in
// place.
func (c *Client) Watch(ctx context.Context, prefix []byte, rev int64, created func(), fn func([]Event)) error {
	body, err := json.Marshal(map[string]any{"create_request": map[string]any{
		"key": prefix, "range_end": PrefixEnd(prefix), "start_revision": strconv.FormatInt(rev, 10),
		"progress_notify": true,
	}})
	if err != nil {
		return fmt.Errorf("encode watch: %w", err)
	}
	w, msg, err := c.openWatch(ctx, body)
	if err != nil {
		return fmt.Errorf("watch %s: %w", prefix, err)
	}
	defer w.close()
	for {
		if !w.idle.Stop() {
			return fmt.Errorf("watch %s: %w", prefix, ErrWatchIdle)
		}
		w.idle.Reset(c.WatchIdle)
		if err := handleWatch(msg, created, fn); err != nil {
			return fmt.Errorf("watch %s from %d: %w", prefix, rev, err)
		}
		msg = watchMessage{}
		if err := w.dec.Decode(&msg); err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case w.silent.Load():
				return fmt.Errorf("watch %s: %w", prefix, ErrWatchIdle)
			}
			return fmt.Errorf("read watch of %s: %w", prefix, err)
		}
	}
}

// watchStream is an open watch: its decoder, and a timer that cancels it
// when it hears nothing for requestTimeout at first, then WatchIdle.
type watchStream struct {
	dec    *json.Decoder
	body   io.Closer
	cancel context.CancelFunc
	idle   *time.Timer
	silent atomic.Bool // the timer cancelled the stream
}

// openWatch sends the watch request body to one member after the other
// until one confirms it with its first message, which it returns.
func (c *Client) openWatch(ctx context.Context, body []byte) (*watchStream, watchMessage, error) {
	var msg watchMessage
	w := new(watchStream)
	err := c.each(ctx, func(ep string) error {
		sctx, stop := context.WithCancel(ctx)
		w.silent.Store(false)
		t := time.AfterFunc(requestTimeout, func() { w.silent.Store(true); stop() })
		resp, err := c.send(sctx, ep, "/v3/watch", body)
		msg = watchMessage{}
		if err == nil {
			d := json.NewDecoder(bufio.NewReader(resp.Body))
			if err = d.Decode(&msg); err == nil {
				w.dec, w.body, w.cancel, w.idle = d, resp.Body, stop, t
				return nil
			}
			resp.Body.Close()
			err = fmt.Errorf("read watch from %s: %w", ep, err)
		}
		t.Stop()
		stop()
		return err
	})
	return w, msg, err
}

func (w *watchStream) close() {
	w.idle.Stop()
	w.cancel()
	w.body.Close()
}

// handleWatch acts on one message of a watch: an error, a compaction or a
// cancellation ends the watch; creation is reported to created; events go
// to fn.
func handleWatch(msg watchMessage, created func(), fn func([]Event)) error {
	r := msg.Result
	switch {
	case msg.Error != nil:
		return msg.Error
	case r.CompactRevision != 0:
		return ErrCompacted
	case r.Canceled:
		return errors.New("canceled by etcd")
	case r.Created && created != nil:
		created()
	}
	if len(r.Events) > 0 {
		evs := make([]Event, len(r.Events))
		for i, e := range r.Events {
			evs[i] = Event{Delete: e.Type == "DELETE", KV: e.KV.kv()}
		}
		fn(evs)
	}
	return nil
}

// watchMessage is one message of a watch stream.
type watchMessage struct {
	Result struct {
		Created         bool        `json:"created"`
		Canceled        bool        `json:"canceled"`
		CompactRevision int64       `json:"compact_revision,string"`
		Events          []wireEvent `json:"events"`
	} `json:"result"`
	Error *gatewayError `json:"error"`
}

type header struct {
	Revision int64 `json:"revision,string"`
}

type wireKV struct {
	Key         []byte `json:"key"`
	Value       []byte `json:"value"`
	ModRevision int64  `json:"mod_revision,string"`
	Lease       int64  `json:"lease,string"`
}

func (kv wireKV) kv() KV {
	return KV{Key: kv.Key, Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease}
}

type wireEvent struct {
	Type string `json:"type"` // absent for a put
	KV   wireKV `json:"kv"`
}

// gatewayError is the gateway's answer to a failed request.
type gatewayError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func (e *gatewayError) Error() string { return "etcd: " + e.Message }

// Is makes a "lease not found" answer match ErrLeaseNotFound.
func (e *gatewayError) Is(target error) bool {
	return target == ErrLeaseNotFound && strings.Contains(e.Message, "lease not found")
}

// unary posts in to path and decodes the answer into out (unless nil).
func (c *Client) unary(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.each(ctx, func(ep string) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		resp, err := c.send(ctx, ep, path, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return fmt.Errorf("read answer from %s: %w", ep, err)
		}
		if resp.StatusCode != http.StatusOK {
			var ge gatewayError
			if json.Unmarshal(data, &ge) == nil && ge.Message != "" {
				return answered{&ge}
			}
			return fmt.Errorf("%s answered %s", ep, resp.Status)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return answered{fmt.Errorf("decode answer: %w", err)}
		}
		return nil
	})
}

// answered is an error a member answered with: no other member is asked.
type answered struct{ err error }

func (a answered) Error() string { return a.err.Error() }
func (a answered) Unwrap() error { return a.err }

// each calls try with one member after another, starting with the last one
// that answered, until one answers (try returns nil or an answered error)
// or ctx ends; try bounds its own time on the member.
func (c *Client) each(ctx context.Context, try func(ep string) error) error {
	first := int(c.next.Load())
	var errs []error
	for i := range c.endpoints {
		n := (first + i) % len(c.endpoints)
		err := try(c.endpoints[n])
		var a answered
		if err == nil || errors.As(err, &a) {
			c.next.Store(int32(n))
			if err != nil {
				return a.err
			}
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// send posts body to path on the member at ep.
func (c *Client) send(ctx context.Context, ep, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ep+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("make request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.http.Do(req)
}

// Backoff between failed requests to etcd, jittered by ±20 %.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// RetryDelay is the jittered backoff after the n-th failure in a row:
// 100 ms doubling to 2 s.
func RetryDelay(n int) time.Duration {
	return backoff.Delay(n, minBackoff, maxBackoff)
}
