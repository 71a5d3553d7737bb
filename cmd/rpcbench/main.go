package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// procRoot is where process information is read from.
const procRoot = "/proc"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlagsReported):
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "rpcbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first interrupt, a second one kills
	rep, err := bench(ctx, cfg, progressOutput(cfg, stderr))
	if err != nil {
		fmt.Fprintln(stderr, "rpcbench:", err)
		return 1
	}
	if err := rep.write(stdout, cfg.json); err != nil {
		fmt.Fprintln(stderr, "rpcbench:", err)
		return 1
	}
	if !rep.clean() {
		return 1
	}
	return 0
}

// bench runs the load described by cfg and gathers the report. Cancelling ctx
// stops new requests; the answers still in flight are awaited.
func bench(ctx context.Context, cfg config, progress io.Writer) (report, error) {
	for _, pid := range []int{cfg.pid, cfg.backend} {
		if pid == 0 {
			continue
		}
		if _, err := sampleTreeCPU(procRoot, pid); err != nil {
			return report{}, fmt.Errorf("watch cpu of pid %d: %w", pid, err)
		}
	}
	addrs, err := connAddrs(cfg.addr, cfg.conns)
	if err != nil {
		return report{}, err
	}
	r := newRunner(ctx, cfg, addrs, progress)
	r.start()
	r.wait(time.After(cfg.warmup))
	before, backendBefore, err := r.sampleCPU()
	if err != nil {
		r.sched.interrupt()
		r.wait(nil)
		return report{}, err
	}
	r.wait(nil)
	elapsed := max(r.sched.now()-r.sched.measureFrom, 0)
	after, backendAfter, err := r.sampleCPU()
	if err != nil {
		return report{}, err
	}
	total := newStats()
	for _, c := range r.clients {
		total.merge(c.stats)
	}
	return buildReport(cfg, total, elapsed, cpuUsed(cfg.pid, before, after),
		cpuUsed(cfg.backend, backendBefore, backendAfter)), nil
}

// runner runs the clients and watches them until they finish.
type runner struct {
	cfg       config
	sched     *schedule
	clients   []*client
	done      chan struct{} // closed when every client has returned
	interrupt <-chan struct{}
	progress  *progressLine // nil: no progress output
}

// newRunner makes one client per address in addrs (connAddrs).
func newRunner(ctx context.Context, cfg config, addrs []string, progress io.Writer) *runner {
	r := &runner{
		cfg:       cfg,
		sched:     newSchedule(cfg, time.Now()),
		done:      make(chan struct{}),
		interrupt: ctx.Done(),
	}
	for _, addr := range addrs {
		r.clients = append(r.clients, newClient(&r.cfg, r.sched, addr))
	}
	if progress != nil {
		r.progress = newProgressLine(progress, r.sched, r.clients)
	}
	return r
}

// start launches one goroutine per connection.
func (r *runner) start() {
	var wg sync.WaitGroup
	for _, c := range r.clients {
		wg.Go(c.run)
	}
	go func() {
		wg.Wait()
		close(r.done)
	}()
}

// wait blocks until the clients finish or until fires, printing progress and
// turning an interrupt into a drain. A nil until waits for the clients.
func (r *runner) wait(until <-chan time.Time) {
	var tick <-chan time.Time
	if r.progress != nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-r.done:
			return
		case <-until:
			return
		case <-r.interrupt:
			r.sched.interrupt()
			r.interrupt = nil // fires once
		case <-tick:
			r.progress.print()
		}
	}
}

// sampleCPU samples the CPU time of the server and of its backend, each
// nothing without its pid.
func (r *runner) sampleCPU() (server, backend cpuSample, err error) {
	if r.cfg.pid != 0 {
		if server, err = sampleTreeCPU(procRoot, r.cfg.pid); err != nil {
			return server, backend, fmt.Errorf("sample server cpu: %w", err)
		}
	}
	if r.cfg.backend != 0 {
		if backend, err = sampleTreeCPU(procRoot, r.cfg.backend); err != nil {
			return server, backend, fmt.Errorf("sample backend cpu: %w", err)
		}
	}
	return server, backend, nil
}
