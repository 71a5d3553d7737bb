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

// runFunc performs one method against Redis with its checked params and keys,
// and sets the result on rep.
type runFunc func(ctx context.Context, rdb *redis.Client, p *params, keys []string, rep *rpc.Reply) error

// methodSpec is one cache method: its name, the out it answers, the params it
// takes and how they name its keys, and what it does.
type methodSpec struct {
	name, out, shape string
	keys             keyRule
	run              runFunc
}

var methods = []methodSpec{
	{"cache.set", "set_r", shapeSet, oneKey, set},
	{"cache.get", "get_r", shapeKey, oneKey, get},
	{"cache.del", "del_r", shapeKeys, keysOrKey, del},
	{"cache.exists", "exists_r", shapeKeys, keysOrKey, exists},
	{"cache.incr", "incr_r", shapeIncr, oneKey, incr},
	{"cache.expire", "expire_r", shapeExpire, oneKey, expire},
	{"cache.ttl", "ttl_r", shapeKey, oneKey, ttl},
	{"cache.mget", "mget_r", shapeMget, keyList, mget},
	{"cache.mset", "mset_r", shapeMset, noKeys, mset},
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

func set(ctx context.Context, rdb *redis.Client, p *params, keys []string, rep *rpc.Reply) error {
	value, err := p.value()
	if err != nil {
		return err
	}
	ttl, err := p.ttl(false)
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, keys[0], []byte(value), ttl).Err(); err != nil {
		return err
	}
	rep.SetRaw(jsonTrue)
	return nil
}

func get(ctx context.Context, rdb *redis.Client, _ *params, keys []string, rep *rpc.Reply) error {
	b, err := rdb.Get(ctx, keys[0]).Bytes()
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

func del(ctx context.Context, rdb *redis.Client, _ *params, keys []string, rep *rpc.Reply) error {
	n, err := rdb.Del(ctx, keys...).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendInt(nil, n, 10))
	return nil
}

func exists(ctx context.Context, rdb *redis.Client, p *params, keys []string, rep *rpc.Reply) error {
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

func incr(ctx context.Context, rdb *redis.Client, p *params, keys []string, rep *rpc.Reply) error {
	by := int64(1)
	if p.By != nil {
		by = *p.By
	}
	n, err := rdb.IncrBy(ctx, keys[0], by).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendInt(nil, n, 10))
	return nil
}

func expire(ctx context.Context, rdb *redis.Client, p *params, keys []string, rep *rpc.Reply) error {
	d, err := p.ttl(true)
	if err != nil {
		return err
	}
	ok, err := rdb.PExpire(ctx, keys[0], d).Result()
	if err != nil {
		return err
	}
	rep.SetRaw(strconv.AppendBool(nil, ok))
	return nil
}

func ttl(ctx context.Context, rdb *redis.Client, _ *params, keys []string, rep *rpc.Reply) error {
	d, err := rdb.PTTL(ctx, keys[0]).Result()
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

func mget(ctx context.Context, rdb *redis.Client, _ *params, keys []string, rep *rpc.Reply) error {
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

func mset(ctx context.Context, rdb *redis.Client, p *params, _ []string, rep *rpc.Reply) error {
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
