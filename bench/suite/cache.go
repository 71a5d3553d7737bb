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
// rpcbench, or redis-benchmark straight against the same redis-server.
type cacheLoad struct {
	name      string
	rpcd      bool   // through rpcd (else redis-benchmark)
	oneWorker bool   // through the rpcd with one worker
	in        string // rpcd's method
	param     string
	test      string // redis-benchmark's -t
	pipe      int    // redis-benchmark's -P
	versus    string // the direct load whose rate this one's is compared with
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
	{name: "rpcd cache.set", rpcd: true, in: "cache.set", param: `{"key":"rpcd:key","value":"xxx"}`, versus: "redis-benchmark SET -P 1"},
	{name: "redis-benchmark SET -P 1", test: "set", pipe: 1},
	{name: "rpcd cache.get", rpcd: true, in: "cache.get", param: `{"key":"rpcd:key"}`, versus: "redis-benchmark GET -P 1"},
	{name: "redis-benchmark GET -P 1", test: "get", pipe: 1},
	{name: "rpcd-1w cache.get", rpcd: true, oneWorker: true, in: "cache.get", param: `{"key":"rpcd:key"}`, versus: "redis-benchmark GET -P 1"},
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
			before, err := processCPU(redis.pid())
			if err != nil {
				return err
			}
			var r cacheRun
			var n float64
			switch {
			case l.rpcd && l.oneWorker:
				r, n, err = rpcdCacheLoad(ctx, o, bins, rpcd1w, l)
			case l.rpcd:
				r, n, err = rpcdCacheLoad(ctx, o, bins, rpcd, l)
			default:
				r, n, err = redisBenchmark(ctx, o, redis, l)
			}
			if err != nil {
				return err
			}
			after, err := processCPU(redis.pid())
			if err != nil {
				return err
			}
			r.redisCPU = (after - before).Seconds() * 1e6 / n
			log.Printf("cache run %d/%d  %-26s %9.0f req/s  rpcd %6.2f µs/req  redis %5.2f µs/req",
				rep, o.repeat, l.name, r.rps, r.rpcdCPU, r.redisCPU)
			res.cache = append(res.cache, namedCacheRun{l.name, r})
		}
	}
	return nil
}

// rpcdCacheLoad runs rpcbench with l's method against rpcd, one request in
// flight per connection, and returns the run and its request count.
func rpcdCacheLoad(ctx context.Context, o options, bins binaries, s *server, l cacheLoad) (cacheRun, float64, error) {
	args := []string{"-addr", s.addr, "-c", strconv.Itoa(o.cacheConns), "-d", o.duration.String(),
		"-warmup", o.warmup.String(), "-pid", strconv.Itoa(s.pid()), "-json", "-in", l.in, "-params", l.param}
	r, err := rpcbench(ctx, bins, args, s.name+" "+l.in)
	if err != nil {
		return cacheRun{}, 0, err
	}
	return cacheRun{rps: r.RPS, rpcdCPU: r.Server.CPUPerRequest, p50: r.P50US}, float64(r.Requests), nil
}

// redisBenchmark runs redis-benchmark for l against s, sized to last about
// o.duration at pipelining 1, and returns the run and its request count.
func redisBenchmark(ctx context.Context, o options, s *server, l cacheLoad) (cacheRun, float64, error) {
	host, port, _ := strings.Cut(s.addr, ":")
	n := int(o.duration.Seconds()*50000) * l.pipe
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-c", strconv.Itoa(o.cacheConns),
		"-n", strconv.Itoa(n), "-P", strconv.Itoa(l.pipe), "-t", l.test, "--csv")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return cacheRun{}, 0, fmt.Errorf("redis-benchmark %s: %w\n%s", l.name, err, stderr.String())
	}
	rows, err := csv.NewReader(&stdout).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[1]) < 5 {
		return cacheRun{}, 0, fmt.Errorf("redis-benchmark %s: unexpected output %q: %v", l.name, stdout.String(), err)
	}
	rps, err1 := strconv.ParseFloat(rows[1][1], 64)
	p50, err2 := strconv.ParseFloat(rows[1][4], 64)
	if err1 != nil || err2 != nil {
		return cacheRun{}, 0, fmt.Errorf("redis-benchmark %s: unexpected figures %q", l.name, rows[1])
	}
	return cacheRun{rps: rps, p50: p50 * 1000}, float64(n), nil
}
