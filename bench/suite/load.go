package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/exec"
	"strconv"
)

// loadRun is the part of an rpcbench -json report the suite uses.
type loadRun struct {
	RPS        float64 `json:"rps"`
	P50US      float64 `json:"latency_p50_us"`
	P99US      float64 `json:"latency_p99_us"`
	P999US     float64 `json:"latency_p999_us"`
	MaxUS      float64 `json:"latency_max_us"`
	Requests   int64   `json:"requests"`
	Mismatches int64   `json:"mismatches"`
	Server     treeCPU `json:"server"`
	Backend    treeCPU `json:"backend"`
}

// treeCPU is rpcbench's account of one process tree's CPU.
type treeCPU struct {
	CPUPerRequest float64 `json:"cpu_us_per_req"`
	Procs         int     `json:"procs"`
}

// measureLoad starts every server, then runs rpcbench against each in turn,
// depth by depth, repeat by repeat, so that machine noise spreads over all.
func measureLoad(ctx context.Context, o options, bins binaries, work string, res *results) error {
	servers := make([]*server, 0, len(o.servers))
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, name := range o.servers {
		s, err := startServer(ctx, o, bins, work, name)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	for rep := 1; rep <= o.repeat; rep++ {
		for _, depth := range o.depths {
			for _, s := range servers {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("load runs: %w", err)
				}
				r, err := runLoad(ctx, o, bins, s, depth)
				if err != nil {
					return err
				}
				log.Printf("run %d/%d  %-8s depth %-3d %9.0f req/s  %6.2f µs cpu/req  p50 %7.1f µs  p99 %8.1f µs",
					rep, o.repeat, s.name, depth, r.RPS, r.Server.CPUPerRequest, r.P50US, r.P99US)
				res.addLoad(s.name, depth, r)
			}
		}
	}
	return nil
}

// runLoad runs rpcbench once against s and decodes its report.
func runLoad(ctx context.Context, o options, bins binaries, s *server, depth int) (loadRun, error) {
	args := []string{"-addr", s.addr, "-c", strconv.Itoa(o.conns), "-depth", strconv.Itoa(depth),
		"-d", o.duration.String(), "-warmup", o.warmup.String(), "-pid", strconv.Itoa(s.pid()), "-json"}
	if s.kind.redis {
		args = append(args, "-redis")
	} else {
		args = append(args, "-in", "ping", "-params", o.params)
	}
	return rpcbench(ctx, bins, args, fmt.Sprintf("%s at depth %d", s.name, depth))
}

// rpcbench runs rpcbench with args (which include -json) and decodes its
// report; what names the run in errors.
func rpcbench(ctx context.Context, bins binaries, args []string, what string) (loadRun, error) {
	cmd := exec.CommandContext(ctx, bins["rpcbench"], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r loadRun
	if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil || err != nil {
		return r, fmt.Errorf("rpcbench against %s: %v %v\n%s%s", what, err, jerr,
			stdout.String(), stderr.String())
	}
	return r, nil
}
