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

// runFunc performs one method against Redis and sets the result on rep.
type runFunc func(ctx context.Context, rdb *redis.Client, params []byte, rep *rpc.Reply) error

type methodSpec struct {
	name, out string
	run       runFunc
}

func (s *Store) methods() []methodSpec {
	return []methodSpec{
		{"cache.set", "set_r", set},
		{"cache.get", "get_r", get},
		{"cache.del", "del_r", del},
		{"cache.exists", "exists_r", exists},
		{"cache.incr", "incr_r", incr},
		{"cache.expire", "expire_r", expire},
		{"cache.ttl", "ttl_r", ttl},
		{"cache.mget", "mget_r", mget},
		{"cache.mset", "mset_r", mset},
	}
}

var jsonTrue = []byte("true")

func set(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.set", shapeSet
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	key, err := p.key(m, shape)
	if err != nil {
		return err
	}
	value, err := p.value(m, shape)
	if err != nil {
		return err
	}
	ttl, err := p.ttl(m, shape, false)
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, key, []byte(value), ttl).Err(); err != nil {
		return err
	}
	rep.SetRaw(jsonTrue)
	return nil
}

func get(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.get", shapeKey
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	key, err := p.key(m, shape)
	if err != nil {
		return err
	}
	b, err := rdb.Get(ctx, key).Bytes()
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
}

var null = []byte("null")

func del(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.del", shapeKeys
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	keys, err := p.keyList(m, shape, true)
	if err != nil {
		return err
	}
	n, err := rdb.Del(ctx, keys...).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendInt(nil, n, 10))
	return nil
}

func exists(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.exists", shapeKeys
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	keys, err := p.keyList(m, shape, true)
	if err != nil {
		return err
	}
	n, err := rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return err
	}
	if p.Key != nil {
		rep.SetRaw(strconv.AppendBool(nil, n == 1))
		return nil
	}
	rep.SetRaw(strconv.AppendInt(nil, n, 10))
	return nil
}

func incr(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.incr", shapeIncr
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	key, err := p.key(m, shape)
	if err != nil {
		return err
	}
	by := int64(1)
	if p.By != nil {
		by = *p.By
	}
	n, err := rdb.IncrBy(ctx, key, by).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendInt(nil, n, 10))
	return nil
}

func expire(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.expire", shapeExpire
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	key, err := p.key(m, shape)
	if err != nil {
		return err
	}
	d, err := p.ttl(m, shape, true)
	if err != nil {
		return err
	}
	ok, err := rdb.PExpire(ctx, key, d).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendBool(nil, ok))
	return nil
}

func ttl(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.ttl", shapeKey
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	key, err := p.key(m, shape)
	if err != nil {
		return err
	}
	d, err := rdb.PTTL(ctx, key).Result()
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
}

func mget(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.mget", shapeMget
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	keys, err := p.keyList(m, shape, false)
	if err != nil {
		return err
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
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
}

func mset(ctx context.Context, rdb *redis.Client, raw []byte, rep *rpc.Reply) error {
	const m, shape = "cache.mset", shapeMset
	p, err := parse(m, shape, raw)
	if err != nil {
		return err
	}
	if len(p.Items) == 0 || len(p.Items) > MaxKeys {
		return badParams(m, shape, `"items" must hold 1 to 1000 keys`)
	}
	if _, empty := p.Items[""]; empty {
		return badParams(m, shape, "a key must not be empty")
	}
	ttl, err := p.ttl(m, shape, false)
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
