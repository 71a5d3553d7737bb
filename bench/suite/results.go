package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results gathers every measurement of a suite run.
type results struct {
	opts     options
	started  time.Time
	load     map[loadKey][]loadRun
	idle     []idleResult
	cache    []namedCacheRun
	blocking []blockingRun
}

type namedCacheRun struct {
	name string
	run  cacheRun
}

// cacheSummary is the median of each figure over the runs of one cache load.
func (r *results) cacheSummary(name string) cacheRun {
	var runs []cacheRun
	for _, c := range r.cache {
		if c.name == name {
			runs = append(runs, c.run)
		}
	}
	pick := func(f func(cacheRun) float64) float64 {
		vs := make([]float64, len(runs))
		for i, run := range runs {
			vs[i] = f(run)
		}
		return median(vs)
	}
	return cacheRun{
		rps:      pick(func(c cacheRun) float64 { return c.rps }),
		rpcdCPU:  pick(func(c cacheRun) float64 { return c.rpcdCPU }),
		redisCPU: pick(func(c cacheRun) float64 { return c.redisCPU }),
		p50:      pick(func(c cacheRun) float64 { return c.p50 }),
	}
}

// cacheTable renders the cache runs as markdown.
func (r *results) cacheTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe cache against the same redis-server, %d connections, medians of %d rounds; rpcd's rows one request in flight per connection, its CPU per call also as a multiple of the same rpcd's CPU per ping:\n\n",
		r.opts.cacheConns, r.opts.repeat)
	b.WriteString("| load | req/s | rpcd CPU µs/req | × rpcd ping | redis-server CPU µs/req | p50 µs |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|\n")
	ping := map[bool]float64{}
	for _, l := range cacheLoads {
		if l.rpcd && l.in == "ping" {
			ping[l.oneWorker] = r.cacheSummary(l.name).rpcdCPU
		}
	}
	for _, l := range cacheLoads {
		s := r.cacheSummary(l.name)
		cpu, ratio := "–", "–"
		if l.rpcd {
			cpu = fmt.Sprintf("%.2f", s.rpcdCPU)
			if base := ping[l.oneWorker]; base > 0 {
				ratio = fmt.Sprintf("%.2f", s.rpcdCPU/base)
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.2f | %.0f |\n", l.name, s.rps, cpu, ratio, s.redisCPU, s.p50)
	}
	b.WriteString(r.cacheRatios())
	return b.String()
}

// cacheRatios renders, for each rpcd load with a direct counterpart, its rate
// over the counterpart's in each round, and their median.
func (r *results) cacheRatios() string {
	var b strings.Builder
	b.WriteString("\nrpcd's rate over a direct load's in the same round (each load runs once a round, in the table's order):\n\n")
	b.WriteString("| rpcd load | ÷ direct load | round by round | median |\n|---|---|---|--:|\n")
	for _, l := range cacheLoads {
		for _, versus := range l.versus {
			rates, direct := r.cacheRates(l.name), r.cacheRates(versus)
			var ratios []float64
			var cells []string
			for i := range min(len(rates), len(direct)) {
				ratios = append(ratios, rates[i]/direct[i])
				cells = append(cells, fmt.Sprintf("%.2f", rates[i]/direct[i]))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f |\n", l.name, versus, strings.Join(cells, ", "), median(ratios))
		}
	}
	return b.String()
}

// cacheRates is the rate of each run of one cache load, in round order.
func (r *results) cacheRates(name string) []float64 {
	var rates []float64
	for _, c := range r.cache {
		if c.name == name {
			rates = append(rates, c.run.rps)
		}
	}
	return rates
}

type loadKey struct {
	server string
	depth  int
}

type idleResult struct {
	name         string
	bytesPerConn float64
}

func (r *results) addLoad(server string, depth int, run loadRun) {
	if r.load == nil {
		r.load = map[loadKey][]loadRun{}
	}
	k := loadKey{server, depth}
	r.load[k] = append(r.load[k], run)
}

// loadSummary is the median of each figure over one server's runs at one depth.
type loadSummary struct {
	cpuUS, rps, p50, p99 float64
}

func (r *results) summary(server string, depth int) loadSummary {
	runs := r.load[loadKey{server, depth}]
	pick := func(f func(loadRun) float64) float64 {
		vs := make([]float64, len(runs))
		for i, run := range runs {
			vs[i] = f(run)
		}
		return median(vs)
	}
	return loadSummary{
		cpuUS: pick(func(l loadRun) float64 { return l.Server.CPUPerRequest }),
		rps:   pick(func(l loadRun) float64 { return l.RPS }),
		p50:   pick(func(l loadRun) float64 { return l.P50US }),
		p99:   pick(func(l loadRun) float64 { return l.P99US }),
	}
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// baseline is the server the ratio column compares against.
const baseline = "redis"

// table renders the results as markdown.
func (r *results) table() string {
	o := r.opts
	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d runs of %v (after %v warmup) at %d connections; %d CPUs, %s, %s/%s; rpcd with %d workers, rpcd-1w with 1; run %s.\n\n",
		o.repeat, o.duration, o.warmup, o.conns, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		o.workers, r.started.UTC().Format("2006-01-02"))
	b.WriteString("| server | depth | CPU µs/req | × redis | req/s | p50 µs | p99 µs |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, depth := range o.depths {
		base := r.summary(baseline, depth).cpuUS
		for _, name := range o.servers {
			s := r.summary(name, depth)
			ratio := "–"
			if base > 0 && slices.Contains(o.servers, baseline) {
				ratio = fmt.Sprintf("%.2f", s.cpuUS/base)
			}
			fmt.Fprintf(&b, "| %s | %d | %.2f | %s | %.0f | %.1f | %.1f |\n",
				name, depth, s.cpuUS, ratio, s.rps, s.p50, s.p99)
		}
	}
	if len(r.cache) > 0 {
		b.WriteString(r.cacheTable())
	}
	if len(r.blocking) > 0 {
		b.WriteString(r.blockingTable())
	}
	if len(r.idle) > 0 {
		fmt.Fprintf(&b, "\nResident memory per idle connection (%d connections, each after one ping; RSS of all the server's processes):\n\n",
			o.idle)
		b.WriteString("| server | bytes/conn |\n|---|--:|\n")
		for _, i := range r.idle {
			fmt.Fprintf(&b, "| %s | %.0f |\n", i.name, i.bytesPerConn)
		}
	}
	return b.String()
}

// Markers delimit the part of docs/benchmarks.md that the suite rewrites.
const (
	beginMarker = "<!-- suite:begin -->"
	endMarker   = "<!-- suite:end -->"
	chartName   = "benchmarks.png"
)

// publish prints the table and writes it, with the chart, into dir.
func publish(o options, r *results, dir string) error {
	table := r.table()
	fmt.Print(table)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := writeChart(r, filepath.Join(dir, chartName)); err != nil {
		return err
	}
	return updateDoc(filepath.Join(dir, "benchmarks.md"), table)
}

// updateDoc replaces the text between the markers of the document at path, or
// creates the document holding only the generated part.
func updateDoc(path, table string) error {
	generated := beginMarker + "\n" + table + "\n![CPU per request, throughput and idle memory](" + chartName + ")\n" + endMarker
	doc, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		doc = []byte("# Benchmarks\n\n" + generated + "\n")
	case err != nil:
		return fmt.Errorf("update %s: %w", path, err)
	default:
		i, j := bytes.Index(doc, []byte(beginMarker)), bytes.Index(doc, []byte(endMarker))
		if i < 0 || j < i {
			return fmt.Errorf("update %s: no %s ... %s section", path, beginMarker, endMarker)
		}
		doc = slices.Concat(doc[:i], []byte(generated), doc[j+len(endMarker):])
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return nil
}
