package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressMinDuration is the shortest run that gets a progress line.
const progressMinDuration = 3 * time.Second

// progressOutput returns where to print the once-a-second progress line, or nil:
// only for text output on a terminal, and only for runs long enough to need it.
func progressOutput(cfg config, stderr io.Writer) io.Writer {
	if cfg.json || (cfg.duration > 0 && cfg.warmup+cfg.duration < progressMinDuration) {
		return nil
	}
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}

// progressLine prints the answer rate since its previous print.
type progressLine struct {
	w         io.Writer
	sched     *schedule
	clients   []*client
	lastCount int64
	lastAt    time.Duration
}

func newProgressLine(w io.Writer, sched *schedule, clients []*client) *progressLine {
	return &progressLine{w: w, sched: sched, clients: clients}
}

func (p *progressLine) print() {
	now := p.sched.now()
	var count int64
	for _, c := range p.clients {
		count += c.answered.Load()
	}
	rate := float64(count-p.lastCount) / (now - p.lastAt).Seconds()
	phase := "measure"
	if now < p.sched.measureFrom {
		phase = "warmup"
	}
	fmt.Fprintf(p.w, "%6.1fs  %-7s  %10.0f req/s  %d answers\n", now.Seconds(), phase, rate, count)
	p.lastCount, p.lastAt = count, now
}
