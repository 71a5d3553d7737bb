package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/exec"
	"strconv"
	"time"
)

// Blocking runs measure a ping's tail while fib(blockingFib) keeps every
// worker's pool busy: ping on blockingPingConns connections alone, then
// during the fib load on -blocking-conns others, round by round, against one
// rpcd with -workers workers.
const (
	blockingFib       = "100000"
	blockingPingConns = 10
)

// blockingRun is one round: ping alone, ping under fib, and fib's own rate.
type blockingRun struct {
	aloneP99, underP99, underRPS, fibRPS float64
}

// measureBlocking runs the blocking rounds and adds them to res.
func measureBlocking(ctx context.Context, o options, bins binaries, work string, res *results) error {
	s, err := startServer(ctx, o, bins, work, "rpcd")
	if err != nil {
		return err
	}
	defer s.stop()
	ping := func() (loadRun, error) {
		return rpcbench(ctx, bins, []string{"-addr", s.addr, "-c", strconv.Itoa(blockingPingConns),
			"-d", o.duration.String(), "-warmup", o.warmup.String(), "-json", "-in", "ping", "-params", o.params}, "rpcd ping")
	}
	for rep := 1; rep <= o.repeat; rep++ {
		alone, err := ping()
		if err != nil {
			return err
		}
		// The fib load starts first and outlasts the ping run under it by a
		// warmup and a second; its rate covers its whole run.
		fib := exec.CommandContext(ctx, bins["rpcbench"], "-addr", s.addr, "-c", strconv.Itoa(o.blockingConns),
			"-d", (o.duration + 2*o.warmup + time.Second).String(), "-json", "-in", "fib", "-params", blockingFib)
		var fibOut, fibErr bytes.Buffer
		fib.Stdout, fib.Stderr = &fibOut, &fibErr
		if err := fib.Start(); err != nil {
			return fmt.Errorf("start the fib load: %w", err)
		}
		under, err := ping()
		waitErr := fib.Wait()
		if err != nil {
			return err
		}
		var fr loadRun
		if jerr := json.Unmarshal(fibOut.Bytes(), &fr); jerr != nil || waitErr != nil {
			return fmt.Errorf("fib load: %v %v\n%s%s", waitErr, jerr, fibOut.String(), fibErr.String())
		}
		r := blockingRun{aloneP99: alone.P99US, underP99: under.P99US, underRPS: under.RPS, fibRPS: fr.RPS}
		log.Printf("blocking run %d/%d  ping p99 %7.0f µs alone, %7.0f µs under fib (%.2f ×); ping %6.0f req/s, fib %5.0f req/s",
			rep, o.repeat, r.aloneP99, r.underP99, r.underP99/r.aloneP99, r.underRPS, r.fibRPS)
		res.blocking = append(res.blocking, r)
	}
	return nil
}

// blockingTable renders the blocking rounds as markdown, with their medians.
func (r *results) blockingTable() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nPing's tail while fib(%s) on %d connections keeps every pool busy: ping on %d other connections, alone and then under the fib load, round by round (rpcd with %d workers):\n\n",
		blockingFib, r.opts.blockingConns, blockingPingConns, r.opts.workers)
	b.WriteString("| round | ping p99 alone µs | p99 under fib µs | ratio | ping req/s under fib | fib req/s |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|\n")
	var col [5][]float64
	for i, run := range r.blocking {
		ratio := run.underP99 / run.aloneP99
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.2f | %.0f | %.0f |\n", i+1, run.aloneP99, run.underP99, ratio, run.underRPS, run.fibRPS)
		for j, v := range []float64{run.aloneP99, run.underP99, ratio, run.underRPS, run.fibRPS} {
			col[j] = append(col[j], v)
		}
	}
	fmt.Fprintf(&b, "| median | %.0f | %.0f | %.2f | %.0f | %.0f |\n",
		median(col[0]), median(col[1]), median(col[2]), median(col[3]), median(col[4]))
	return b.String()
}
