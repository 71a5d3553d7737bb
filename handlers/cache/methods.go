package cache

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rpcd/rpcd/handlers/cache/resp"
	"github.com/rpcd/rpcd/protocol"
	"github.com/rpcd/rpcd/rpc"
)

// keyRule says how a method's params name its keys.
type keyRule uint8

const (
	noKeys    keyRule = iota // the method finds its keys itself
	oneKey                   // "key"
	keyList                  // "keys"
	keysOrKey                // "keys", or "key" as a list of one
)

// sendFunc queues one method's command on c, with its checked params. It
// queues nothing when it returns an error.
type sendFunc func(c *resp.Conn, p *params) error

// recvFunc reads the reply to a command that sendFunc queued, and sets the
// result on rep. It reads the whole reply even when it fails, so the replies
// of the commands after it stay in step.
type recvFunc func(c *resp.Conn, p *params, rep *rpc.Reply) error

// runFunc performs a method that takes more than one exchange with Redis, and
// sets the result on rep.
type runFunc func(ctx context.Context, c *resp.Conn, p *params, rep *rpc.Reply) error

// methodSpec is one cache method: its name, the out it answers, the params it
// takes and how they name its keys, and what it does: send and recv, a
// command that goes into its worker's pipeline (a Batch method), or run, on a
// pool goroutine of its own (a Blocking method).
type methodSpec struct {
	name, out, shape string
	keys             keyRule
	send             sendFunc
	recv             recvFunc
	run              runFunc
}

var methods = []methodSpec{
	{name: "cache.set", out: "set_r", shape: shapeSet, keys: oneKey, send: sendSet, recv: recvOK},
	{name: "cache.get", out: "get_r", shape: shapeKey, keys: oneKey, send: keysCommand("GET"), recv: recvValue},
	{name: "cache.del", out: "del_r", shape: shapeKeys, keys: keysOrKey, send: keysCommand("DEL"), recv: recvInt},
	{name: "cache.exists", out: "exists_r", shape: shapeKeys, keys: keysOrKey, send: keysCommand("EXISTS"), recv: recvExists},
	{name: "cache.incr", out: "incr_r", shape: shapeIncr, keys: oneKey, send: sendIncr, recv: recvInt},
	{name: "cache.expire", out: "expire_r", shape: shapeExpire, keys: oneKey, send: sendExpire, recv: recvBool},
	{name: "cache.ttl", out: "ttl_r", shape: shapeKey, keys: oneKey, send: keysCommand("PTTL"), recv: recvTTL},
	{name: "cache.mget", out: "mget_r", shape: shapeMget, keys: keyList, send: keysCommand("MGET"), recv: recvMget},
	{name: "cache.mset", out: "mset_r", shape: shapeMset, keys: noKeys, run: mset},
}

// parseCall checks raw as m's params into p, keys included.
func (m *methodSpec) parseCall(raw []byte, p *params) error {
	if err := p.parse(m.name, m.shape, raw); err != nil {
		return err
	}
	switch m.keys {
	case oneKey:
		return p.requireKey()
	case keyList, keysOrKey:
		_, err := p.keyList(m.keys == keysOrKey)
		return err
	}
	return nil
}

// keysCommand sends cmd with the call's key or keys as its arguments.
func keysCommand(cmd string) func(*resp.Conn, *params) error {
	return func(c *resp.Conn, p *params) error {
		sendKeys(c, cmd, p)
		return nil
	}
}

// sendKeys queues cmd with the keys of p, "key" or "keys".
func sendKeys(c *resp.Conn, cmd string, p *params) {
	if p.keys == nil {
		c.Begin(2)
		c.ArgString(cmd)
		c.Arg(p.key)
		return
	}
	c.Begin(1 + len(p.keys))
	c.ArgString(cmd)
	for _, k := range p.keys {
		c.Arg(k)
	}
}

var (
	jsonTrue  = []byte("true")
	jsonFalse = []byte("false")
	null      = []byte("null")
)

func sendSet(c *resp.Conn, p *params) error {
	if err := p.requireValue(); err != nil {
		return err
	}
	ms, err := p.ttlMillis(false)
	if err != nil {
		return err
	}
	if ms == 0 {
		c.Begin(3)
	} else {
		c.Begin(5)
	}
	c.ArgString("SET")
	c.Arg(p.key)
	c.Arg(p.value)
	if ms != 0 {
		c.ArgString("PX")
		c.ArgInt(ms)
	}
	return nil
}

func sendIncr(c *resp.Conn, p *params) error {
	by := int64(1)
	if p.hasBy {
		by = p.by
	}
	c.Begin(3)
	c.ArgString("INCRBY")
	c.Arg(p.key)
	c.ArgInt(by)
	return nil
}

func sendExpire(c *resp.Conn, p *params) error {
	ms, err := p.ttlMillis(true)
	if err != nil {
		return err
	}
	c.Begin(3)
	c.ArgString("PEXPIRE")
	c.Arg(p.key)
	c.ArgInt(ms)
	return nil
}

// redisError is an error reply from Redis.
type redisError string

func (e redisError) Error() string { return string(e) }

// errUnexpected is a reply of a kind its command does not give.
var errUnexpected = errors.New("redis answered with a reply of an unexpected kind")

// read reads one reply and turns an error reply into a redisError.
func read(c *resp.Conn) (resp.Reply, error) {
	r, err := c.Read()
	switch {
	case err != nil:
		return r, err
	case r.Kind == resp.Error:
		return r, redisError(r.Str)
	case r.Kind == resp.Array:
		// Skip what no caller of read expects, to stay in step.
		for range r.Int {
			if _, err := read(c); err != nil && !isReply(err) {
				return r, err
			}
		}
		return r, errUnexpected
	}
	return r, nil
}

// isReply reports whether err came from a reply of Redis, not the connection.
func isReply(err error) bool {
	var re redisError
	return errors.As(err, &re) || errors.Is(err, errUnexpected) || errors.Is(err, errNotJSON)
}

// readInt reads an integer reply.
func readInt(c *resp.Conn) (int64, error) {
	r, err := read(c)
	if err == nil && r.Kind != resp.Int {
		err = errUnexpected
	}
	return r.Int, err
}

func recvOK(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	r, err := read(c)
	if err == nil && r.Kind != resp.Status {
		err = errUnexpected
	}
	if err != nil {
		return err
	}
	rep.SetRaw(jsonTrue)
	return nil
}

func recvValue(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	r, err := read(c)
	switch {
	case err != nil:
		return err
	case r.Kind == resp.Nil:
		rep.SetRaw(null)
	case r.Kind != resp.Bulk || !json.Valid(r.Str):
		return errNotJSON
	default:
		rep.SetRaw(r.Str)
	}
	return nil
}

func recvInt(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	n, err := readInt(c)
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendInt(rep.Result()[:0], n, 10))
	return nil
}

func recvBool(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	n, err := readInt(c)
	if err != nil {
		return err
	}
	setBool(rep, n == 1)
	return nil
}

func setBool(rep *rpc.Reply, b bool) {
	if b {
		rep.SetRaw(jsonTrue)
	} else {
		rep.SetRaw(jsonFalse)
	}
}

// recvExists answers the count of keys that exist, or for "key" whether it
// does.
func recvExists(c *resp.Conn, p *params, rep *rpc.Reply) error {
	if p.keys != nil {
		return recvInt(c, p, rep)
	}
	return recvBool(c, p, rep)
}

func recvTTL(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	ms, err := readInt(c)
	switch {
	case err != nil:
		return err
	case ms == -2: // no such key
		rep.SetRaw(null)
	case ms == -1: // no expiry
		rep.SetRaw([]byte("-1"))
	default:
		d := time.Duration(ms) * time.Millisecond
		rep.SetRaw(strconv.AppendFloat(rep.Result()[:0], d.Seconds(), 'f', -1, 64))
	}
	return nil
}

// recvMget answers the values as a JSON list, null for a missing key. It
// reads every element, even after one that is not JSON.
func recvMget(c *resp.Conn, _ *params, rep *rpc.Reply) error {
	r, err := c.Read()
	switch {
	case err != nil:
		return err
	case r.Kind == resp.Error:
		return redisError(r.Str)
	case r.Kind != resp.Array:
		return errUnexpected
	}
	var bad error
	rep.AppendRaw([]byte{'['})
	for i := range r.Int {
		if i > 0 {
			rep.AppendRaw([]byte{','})
		}
		v, err := c.Read()
		switch {
		case err != nil:
			return err
		case v.Kind == resp.Nil:
			rep.AppendRaw(null)
		case v.Kind != resp.Bulk || !json.Valid(v.Str):
			bad = errNotJSON
		default:
			rep.AppendRaw(v.Str)
		}
	}
	rep.AppendRaw([]byte{']'})
	return bad
}

func mset(ctx context.Context, c *resp.Conn, p *params, rep *rpc.Reply) error {
	if len(p.items) == 0 || len(p.items) > MaxKeys {
		return p.bad(`"items" must hold 1 to 1000 keys`)
	}
	if _, empty := p.items[""]; empty {
		return p.bad("a key must not be empty")
	}
	ms, err := p.ttlMillis(false)
	if err != nil {
		return err
	}
	if err := writeItems(ctx, c, p.items, ms); err != nil {
		return err
	}
	rep.SetRaw(jsonTrue)
	return nil
}

// writeItems stores items at once: MSET, or with a TTL a MULTI/EXEC
// transaction of SETs.
func writeItems(ctx context.Context, c *resp.Conn, items map[string]json.RawMessage, ttlMillis int64) error {
	if ttlMillis == 0 {
		c.Begin(1 + 2*len(items))
		c.ArgString("MSET")
		for k, v := range items {
			c.ArgString(k)
			c.Arg(v)
		}
		if err := c.Flush(ctx); err != nil {
			return err
		}
		_, err := read(c)
		return err
	}
	c.Begin(1)
	c.ArgString("MULTI")
	for k, v := range items {
		c.Begin(5)
		c.ArgString("SET")
		c.ArgString(k)
		c.Arg(v)
		c.ArgString("PX")
		c.ArgInt(ttlMillis)
	}
	c.Begin(1)
	c.ArgString("EXEC")
	if err := c.Flush(ctx); err != nil {
		return err
	}
	var first error // MULTI's +OK, then +QUEUED per SET
	for range 1 + len(items) {
		if _, err := read(c); err != nil {
			if !isReply(err) {
				return err
			}
			first = cmpOr(first, err)
		}
	}
	return execResult(c, first)
}

// execResult reads EXEC's reply: an array of the SETs' replies, or an error
// when the transaction was aborted, which a queueing error explains best.
func execResult(c *resp.Conn, queueErr error) error {
	r, err := c.Read()
	switch {
	case err != nil:
		return err
	case r.Kind == resp.Error:
		return cmpOr(queueErr, error(redisError(r.Str)))
	case r.Kind != resp.Array:
		return cmpOr(queueErr, errUnexpected)
	}
	var first error
	for range r.Int {
		if _, err := read(c); err != nil {
			if !isReply(err) {
				return err
			}
			first = cmpOr(first, err)
		}
	}
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// answerError turns a Redis failure into the error the client gets.
func (s *Store) answerError(ctx context.Context, method string, err error) error {
	var pe *protocol.Error
	var rerr redisError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, errNotJSON):
		return protocol.Errorf(protocol.CodeInternal, "%s: %v", method, err)
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded) && deadlinePassed(ctx):
		return protocol.Errorf(protocol.CodeTimeout, "%s: Redis did not answer before the handler deadline", method)
	case errors.As(err, &rerr):
		return redisReplyError(method, string(rerr))
	case errors.Is(err, errUnexpected):
		return protocol.Errorf(protocol.CodeInternal, "%s: %v", method, err)
	}
	addr := ""
	if a := s.addr.Load(); a != nil {
		addr = *a
	}
	return protocol.Errorf(protocol.CodeUnavailable, "%s: Redis at %s is unreachable: %v", method, addr, err)
}

// deadlinePassed reports whether ctx's deadline is behind us; a connection
// deadline set to it can fire just before ctx notices.
func deadlinePassed(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// redisReplyError classifies an error reply from Redis itself.
func redisReplyError(method, msg string) error {
	switch {
	case strings.Contains(msg, "not an integer"), strings.Contains(msg, "would overflow"):
		return protocol.Errorf(protocol.CodeBadRequest, "%s: the stored value is not an integer, or the result overflows: %s", method, msg)
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return protocol.Errorf(protocol.CodeBadRequest, "%s: the key holds a value that is not a string: %s", method, msg)
	}
	for _, prefix := range []string{"LOADING", "BUSY", "MASTERDOWN", "READONLY", "NOAUTH", "WRONGPASS", "NOPERM", "MISCONF"} {
		if strings.HasPrefix(msg, prefix) {
			return protocol.Errorf(protocol.CodeUnavailable, "%s: Redis refused: %s", method, msg)
		}
	}
	return protocol.Errorf(protocol.CodeInternal, "%s: Redis replied: %s", method, msg)
}
