package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log"
	"os/exec"
	"strconv"
	"strings"
)

// A cache load is one row of the cache table: rpcd's cache methods through
// rpcbench, or redis-benchmark (or rpcbench speaking RESP) straight against the
// same redis-server.
type cacheLoad struct {
	name      string
	rpcd      bool   // through rpcd (else straight at redis-server)
	resp      bool   // straight at redis-server with rpcbench -redis (else redis-benchmark)
	oneWorker bool   // through the rpcd with one worker
	in        string // rpcd's method
	param     string
	test      string   // redis-benchmark's -t
	pipe      int      // redis-benchmark's -P
	versus    []string // the direct loads whose rates this one's is compared with
}

// cacheLoads: one key each, as redis-benchmark without -r uses; rpcd's value
// is the JSON string "xxx", redis-benchmark's the 3 bytes xxx. Each SET runs
// before its GET, so GET finds the key, and each rpcd row that has a direct
// counterpart (versus) runs next to it, so their ratio is taken round by round
// under the same conditions. Ping through the same rpcd is the yardstick for
// rpcd's CPU per call. The rpcd-1w rows run the same binary with one worker,
// whose batches are twice as large.
var cacheLoads = []cacheLoad{
	{name: "rpcd ping", rpcd: true, in: "ping", param: `"ireader 0"`},
	{name: "rpcd cache.set", rpcd: true, in: "cache.set", param: `{"key":"rpcd:key","value":"xxx"}`, versus: []string{"redis-benchmark SET -P 1"}},
	{name: "redis-benchmark SET -P 1", test: "set", pipe: 1},
	{name: "rpcd cache.get", rpcd: true, in: "cache.get", param: `{"key":"rpcd:key"}`, versus: []string{"redis-benchmark GET -P 1", "rpcbench -redis PING"}},
	{name: "redis-benchmark GET -P 1", test: "get", pipe: 1},
	{name: "rpcbench -redis PING", resp: true},
	{name: "rpcd-1w cache.get", rpcd: true, oneWorker: true, in: "cache.get", param: `{"key":"rpcd:key"}`, versus: []string{"redis-benchmark GET -P 1", "rpcbench -redis PING"}},
	{name: "rpcd-1w ping", rpcd: true, oneWorker: true, in: "ping", param: `"ireader 0"`},
	{name: "redis-benchmark SET -P 16", test: "set", pipe: 16},
	{name: "redis-benchmark GET -P 16", test: "get", pipe: 16},
}

// cacheRun is one cache load run: requests per second, rpcd's CPU per
// request (rpcd rows), redis-server's CPU per request.
type cacheRun struct {
	rps, rpcdCPU, redisCPU, p50 float64
}

// measureCache starts a redis-server and two rpcds in front of it, one with
// -workers and one with a single worker, and runs every cache load in turn,
// round by round.
func measureCache(ctx context.Context, o options, bins binaries, work string, res *results) error {
	redis, err := startServer(ctx, o, bins, work, "redis")
	if err != nil {
		return err
	}
	defer redis.stop()
	o.cacheRedis = redis.addr
	rpcd, err := startServer(ctx, o, bins, work, "rpcd-cache")
	if err != nil {
		return err
	}
	defer rpcd.stop()
	rpcd1w, err := startServer(ctx, o, bins, work, "rpcd-1w-cache")
	if err != nil {
		return err
	}
	defer rpcd1w.stop()
	for rep := 1; rep <= o.repeat; rep++ {
		for _, l := range cacheLoads {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("cache runs: %w", err)
			}
			var r cacheRun
			var err error
			switch {
			case l.rpcd && l.oneWorker:
				r, err = rpcdCacheLoad(ctx, o, bins, rpcd1w, redis, l)
			case l.rpcd:
				r, err = rpcdCacheLoad(ctx, o, bins, rpcd, redis, l)
			case l.resp:
				r, err = respLoad(ctx, o, bins, redis)
			default:
				r, err = redisBenchmark(ctx, o, redis, l)
			}
			if err != nil {
				return err
			}
			log.Printf("cache run %d/%d  %-26s %9.0f req/s  rpcd %6.2f µs/req  redis %5.2f µs/req",
				rep, o.repeat, l.name, r.rps, r.rpcdCPU, r.redisCPU)
			res.cache = append(res.cache, namedCacheRun{l.name, r})
		}
	}
	return nil
}

// rpcdCacheLoad runs rpcbench with l's method against rpcd, one request in
// flight per connection, with rpcd's and redis's CPU over the measured window.
func rpcdCacheLoad(ctx context.Context, o options, bins binaries, s, redis *server, l cacheLoad) (cacheRun, error) {
	args := []string{"-addr", s.addr, "-c", strconv.Itoa(o.cacheConns), "-d", o.duration.String(),
		"-warmup", o.warmup.String(), "-pid", strconv.Itoa(s.pid()), "-backend-pid", strconv.Itoa(redis.pid()),
		"-json", "-in", l.in, "-params", l.param}
	r, err := rpcbench(ctx, bins, args, s.name+" "+l.in)
	if err != nil {
		return cacheRun{}, err
	}
	return cacheRun{rps: r.RPS, rpcdCPU: r.Server.CPUPerRequest, redisCPU: r.Backend.CPUPerRequest, p50: r.P50US}, nil
}

// respLoad runs rpcbench -redis (PING) straight against redis, one request in
// flight per connection: the load generator of the rpcd rows, speaking RESP.
func respLoad(ctx context.Context, o options, bins binaries, redis *server) (cacheRun, error) {
	args := []string{"-addr", redis.addr, "-redis", "-c", strconv.Itoa(o.cacheConns), "-d", o.duration.String(),
		"-warmup", o.warmup.String(), "-pid", strconv.Itoa(redis.pid()), "-json"}
	r, err := rpcbench(ctx, bins, args, "redis PING")
	if err != nil {
		return cacheRun{}, err
	}
	return cacheRun{rps: r.RPS, redisCPU: r.Server.CPUPerRequest, p50: r.P50US}, nil
}

// redisBenchmark runs redis-benchmark for l against s, sized to last about
// o.duration at pipelining 1, with s's CPU over the whole run.
func redisBenchmark(ctx context.Context, o options, s *server, l cacheLoad) (cacheRun, error) {
	before, err := processCPU(s.pid())
	if err != nil {
		return cacheRun{}, err
	}
	host, port, _ := strings.Cut(s.addr, ":")
	n := int(o.duration.Seconds()*50000) * l.pipe
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(o.cacheConns),
		"-n", strconv.Itoa(n), "-P", strconv.Itoa(l.pipe), "-t", l.test, "--csv")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return cacheRun{}, fmt.Errorf("redis-benchmark %s: %w\n%s", l.name, err, stderr.String())
	}
	rows, err := csv.NewReader(&stdout).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[1]) < 5 {
		return cacheRun{}, fmt.Errorf("redis-benchmark %s: unexpected output %q: %v", l.name, stdout.String(), err)
	}
	rps, err1 := strconv.ParseFloat(rows[1][1], 64)
	p50, err2 := strconv.ParseFloat(rows[1][4], 64)
	if err1 != nil || err2 != nil {
		return cacheRun{}, fmt.Errorf("redis-benchmark %s: unexpected figures %q", l.name, rows[1])
	}
	after, err := processCPU(s.pid())
	if err != nil {
		return cacheRun{}, err
	}
	return cacheRun{rps: rps, redisCPU: (after - before).Seconds() * 1e6 / float64(n), p50: p50 * 1000}, nil
}
