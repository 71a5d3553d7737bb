package cache

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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

// finishFunc reads a queued command's reply into rep once its pipeline has
// run.
type finishFunc func(rep *rpc.Reply) error

// queueFunc queues one method's command on pipe, with its checked params and
// keys, and returns how to read the reply.
type queueFunc func(ctx context.Context, pipe redis.Pipeliner, p *params, keys []string) (finishFunc, error)

// runFunc performs a method that takes more than one queued command, and sets
// the result on rep.
type runFunc func(ctx context.Context, rdb *redis.Client, p *params, rep *rpc.Reply) error

// methodSpec is one cache method: its name, the out it answers, the params it
// takes and how they name its keys, and what it does: queue, a command that
// goes into its worker's pipeline (a Batch method), or run, on a pool
// goroutine of its own (a Blocking method).
type methodSpec struct {
	name, out, shape string
	keys             keyRule
	queue            queueFunc
	run              runFunc
}

var methods = []methodSpec{
	{name: "cache.set", out: "set_r", shape: shapeSet, keys: oneKey, queue: set},
	{name: "cache.get", out: "get_r", shape: shapeKey, keys: oneKey, queue: get},
	{name: "cache.del", out: "del_r", shape: shapeKeys, keys: keysOrKey, queue: del},
	{name: "cache.exists", out: "exists_r", shape: shapeKeys, keys: keysOrKey, queue: exists},
	{name: "cache.incr", out: "incr_r", shape: shapeIncr, keys: oneKey, queue: incr},
	{name: "cache.expire", out: "expire_r", shape: shapeExpire, keys: oneKey, queue: expire},
	{name: "cache.ttl", out: "ttl_r", shape: shapeKey, keys: oneKey, queue: ttl},
	{name: "cache.mget", out: "mget_r", shape: shapeMget, keys: keyList, queue: mget},
	{name: "cache.mset", out: "mset_r", shape: shapeMset, keys: noKeys, run: mset},
}

// parseCall checks raw as m's params and returns them with the keys they name.
func (m *methodSpec) parseCall(raw []byte) (*params, []string, error) {
	p, err := parse(m.name, m.shape, raw)
	if err != nil {
		return nil, nil, err
	}
	var keys []string
	switch m.keys {
	case oneKey:
		var key string
		key, err = p.key()
		keys = []string{key}
	case keyList, keysOrKey:
		keys, err = p.keyList(m.keys == keysOrKey)
	}
	return p, keys, err
}

var (
	jsonTrue = []byte("true")
	null     = []byte("null")
)

func set(ctx context.Context, pipe redis.Pipeliner, p *params, keys []string) (finishFunc, error) {
	value, err := p.value()
	if err != nil {
		return nil, err
	}
	ttl, err := p.ttl(false)
	if err != nil {
		return nil, err
	}
	cmd := pipe.Set(ctx, keys[0], []byte(value), ttl)
	return func(rep *rpc.Reply) error {
		if err := cmd.Err(); err != nil {
			return err
		}
		rep.SetRaw(jsonTrue)
		return nil
	}, nil
}

func get(ctx context.Context, pipe redis.Pipeliner, _ *params, keys []string) (finishFunc, error) {
	cmd := pipe.Get(ctx, keys[0])
	return func(rep *rpc.Reply) error {
		b, err := cmd.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			rep.SetRaw(null)
			return nil
		case err != nil:
			return err
		case !json.Valid(b):
			return errNotJSON
		}
		rep.SetRaw(b)
		return nil
	}, nil
}

// intResult sets an integer reply as the result.
func intResult(cmd *redis.IntCmd) finishFunc {
	return func(rep *rpc.Reply) error {
		n, err := cmd.Result()
		if err != nil {
			return err
		}
		rep.SetRaw(strconv.AppendInt(nil, n, 10))
		return nil
	}
}

func del(ctx context.Context, pipe redis.Pipeliner, _ *params, keys []string) (finishFunc, error) {
	return intResult(pipe.Del(ctx, keys...)), nil
}

func exists(ctx context.Context, pipe redis.Pipeliner, p *params, keys []string) (finishFunc, error) {
	cmd := pipe.Exists(ctx, keys...)
	if p.Key == nil {
		return intResult(cmd), nil
	}
	return func(rep *rpc.Reply) error {
		n, err := cmd.Result()
		if err != nil {
			return err
		}
		rep.SetRaw(strconv.AppendBool(nil, n == 1))
		return nil
	}, nil
}

func incr(ctx context.Context, pipe redis.Pipeliner, p *params, keys []string) (finishFunc, error) {
	by := int64(1)
	if p.By != nil {
		by = *p.By
	}
	return intResult(pipe.IncrBy(ctx, keys[0], by)), nil
}

func expire(ctx context.Context, pipe redis.Pipeliner, p *params, keys []string) (finishFunc, error) {
	d, err := p.ttl(true)
	if err != nil {
		return nil, err
	}
	cmd := pipe.PExpire(ctx, keys[0], d)
	return func(rep *rpc.Reply) error {
		ok, err := cmd.Result()
		if err != nil {
			return err
		}
		rep.SetRaw(strconv.AppendBool(nil, ok))
		return nil
	}, nil
}

func ttl(ctx context.Context, pipe redis.Pipeliner, _ *params, keys []string) (finishFunc, error) {
	cmd := pipe.PTTL(ctx, keys[0])
	return func(rep *rpc.Reply) error {
		d, err := cmd.Result()
		switch {
		case err != nil:
			return err
		case d == -2: // no such key
			rep.SetRaw(null)
		case d == -1: // no expiry
			rep.SetRaw([]byte("-1"))
		default:
			rep.SetRaw(strconv.AppendFloat(nil, d.Seconds(), 'f', -1, 64))
		}
		return nil
	}, nil
}

func mget(ctx context.Context, pipe redis.Pipeliner, _ *params, keys []string) (finishFunc, error) {
	cmd := pipe.MGet(ctx, keys...)
	return func(rep *rpc.Reply) error {
		vals, err := cmd.Result()
		if err != nil {
			return err
		}
		rep.AppendRaw([]byte{'['})
		for i, v := range vals {
			if i > 0 {
				rep.AppendRaw([]byte{','})
			}
			s, ok := v.(string)
			switch {
			case v == nil:
				rep.AppendRaw(null)
			case !ok || !json.Valid([]byte(s)):
				return errNotJSON
			default:
				rep.AppendRaw([]byte(s))
			}
		}
		rep.AppendRaw([]byte{']'})
		return nil
	}, nil
}

func mset(ctx context.Context, rdb *redis.Client, p *params, rep *rpc.Reply) error {
	if len(p.Items) == 0 || len(p.Items) > MaxKeys {
		return p.bad(`"items" must hold 1 to 1000 keys`)
	}
	if _, empty := p.Items[""]; empty {
		return p.bad("a key must not be empty")
	}
	ttl, err := p.ttl(false)
	if err != nil {
		return err
	}
	if err := writeItems(ctx, rdb, p.Items, ttl); err != nil {
		return err
	}
	rep.SetRaw(jsonTrue)
	return nil
}

// writeItems stores items at once: MSET, or with a TTL a transaction of SETs.
func writeItems(ctx context.Context, rdb *redis.Client, items map[string]json.RawMessage, ttl time.Duration) error {
	if ttl == 0 {
		pairs := make([]any, 0, 2*len(items))
		for k, v := range items {
			pairs = append(pairs, k, []byte(v))
		}
		return rdb.MSet(ctx, pairs...).Err()
	}
	_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for k, v := range items {
			pipe.Set(ctx, k, []byte(v), ttl)
		}
		return nil
	})
	return err
}

// answerError turns a Redis failure into the error the client gets.
func (s *Store) answerError(ctx context.Context, method string, err error) error {
	var pe *protocol.Error
	var rerr redis.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, errNotJSON):
		return protocol.Errorf(protocol.CodeInternal, "%s: %v", method, err)
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
		return protocol.Errorf(protocol.CodeTimeout, "%s: Redis did not answer before the handler deadline", method)
	case errors.As(err, &rerr):
		return redisReplyError(method, rerr)
	}
	addr := ""
	if a := s.addr.Load(); a != nil {
		addr = *a
	}
	return protocol.Errorf(protocol.CodeUnavailable, "%s: Redis at %s is unreachable: %v", method, addr, err)
}

// redisReplyError classifies an error reply from Redis itself.
func redisReplyError(method string, err redis.Error) error {
	msg := err.Error()
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
