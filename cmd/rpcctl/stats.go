package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The stats command: a table per worker slot from the master's /metrics,
// refreshed every -interval like top.

// slotStats are one slot's values in one scrape.
type slotStats struct {
	requests, errors float64
	open, workers    float64
	restarts         float64             // workers that crashed or were killed
	buckets          map[float64]float64 // cumulative count by upper bound, over every method
}

// scrapeResult is one scrape of /metrics.
type scrapeResult struct {
	at         time.Time
	generation float64
	ready      float64
	slots      map[int]*slotStats
}

// scrapeStats reads url (a /metrics endpoint) into slot stats.
func scrapeStats(ctx context.Context, hc *http.Client, url string) (*scrapeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	res := &scrapeResult{at: time.Now(), slots: map[int]*slotStats{}}
	if f := fams["rpcd_generation"]; f != nil && len(f.Metric) == 1 {
		res.generation = f.Metric[0].GetGauge().GetValue()
	}
	if f := fams["rpcd_ready"]; f != nil && len(f.Metric) == 1 {
		res.ready = f.Metric[0].GetGauge().GetValue()
	}
	res.collect(fams["rpcd_requests_total"], func(s *slotStats, m *dto.Metric) {
		v := m.GetCounter().GetValue()
		s.requests += v
		if label(m, "code") != "ok" {
			s.errors += v
		}
	})
	res.collect(fams["rpcd_request_duration_seconds"], func(s *slotStats, m *dto.Metric) {
		for _, b := range m.GetHistogram().GetBucket() {
			s.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	})
	res.collect(fams["rpcd_connections_open"], func(s *slotStats, m *dto.Metric) { s.open += m.GetGauge().GetValue() })
	res.collect(fams["rpcd_workers"], func(s *slotStats, m *dto.Metric) { s.workers += m.GetGauge().GetValue() })
	res.collect(fams["rpcd_worker_exits_total"], func(s *slotStats, m *dto.Metric) {
		if cause := label(m, "cause"); cause == "crash" || cause == "killed" {
			s.restarts += m.GetCounter().GetValue()
		}
	})
	return res, nil
}

// collect calls add for each sample of f with the stats of its slot.
func (r *scrapeResult) collect(f *dto.MetricFamily, add func(*slotStats, *dto.Metric)) {
	if f == nil {
		return
	}
	for _, m := range f.Metric {
		slot, err := strconv.Atoi(label(m, "slot"))
		if err != nil {
			continue
		}
		s := r.slots[slot]
		if s == nil {
			s = &slotStats{buckets: map[float64]float64{}}
			r.slots[slot] = s
		}
		add(s, m)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile estimates the q-quantile of the requests between two histograms
// (cumulative counts by upper bound), interpolating linearly inside a
// bucket as Prometheus's histogram_quantile does. It returns NaN when no
// request fell between them, and the largest finite bound for the
// requests above it.
func quantile(q float64, prev, cur map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cur))
	for b := range cur {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return math.NaN()
	}
	total := cur[bounds[len(bounds)-1]] - prev[bounds[len(bounds)-1]]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		n := cur[b] - prev[b]
		if n >= rank {
			if math.IsInf(b, 1) {
				return lower
			}
			return lower + (b-lower)*(rank-below)/max(n-below, 1)
		}
		lower, below = b, n
	}
	return lower
}

// printStats writes the table of the interval from prev to cur.
func printStats(w io.Writer, addr string, prev, cur *scrapeResult) {
	secs := cur.at.Sub(prev.at).Seconds()
	fmt.Fprintf(w, "rpcd %s  generation %.0f  ready %.0f  %s\n\n", addr, cur.generation, cur.ready, cur.at.Format(time.TimeOnly))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SLOT\tWORKERS\tREQ/S\tERR/S\tP50\tP99\tOPEN\tRESTARTS\t")
	slots := make([]int, 0, len(cur.slots))
	for s := range cur.slots {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	for _, slot := range slots {
		c := cur.slots[slot]
		p := prev.slots[slot]
		if p == nil {
			p = &slotStats{}
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%s\t%s\t%.0f\t%.0f\t\n", slot, c.workers,
			(c.requests-p.requests)/secs, (c.errors-p.errors)/secs,
			formatSeconds(quantile(0.5, p.buckets, c.buckets)), formatSeconds(quantile(0.99, p.buckets, c.buckets)),
			c.open, c.restarts)
	}
	tw.Flush()
}

// formatSeconds prints a latency, "-" when there is none.
func formatSeconds(s float64) string {
	if math.IsNaN(s) {
		return "-"
	}
	return time.Duration(s * 1e9).Round(time.Microsecond).String()
}

// clearScreen moves a terminal's cursor home and clears it.
const clearScreen = "\x1b[H\x1b[2J"

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// stats scrapes cfg.metrics every cfg.interval and prints a table of each
// interval: cfg.n tables, or until interrupted when cfg.n is 0. A failed
// scrape (the endpoint is re-bound by every upgrade) is shown in place of
// its table and retried at the next interval; the next table then covers
// the interval from the last scrape that succeeded. It returns 1 when
// every scrape failed.
func stats(cfg *config, stdout, stderr io.Writer) int {
	hc := &http.Client{Timeout: cfg.timeout}
	url := "http://" + strings.TrimPrefix(cfg.metrics, "http://") + "/metrics"
	clear := isTerminal(stdout)
	prev, err := scrapeStats(context.Background(), hc, url)
	if err != nil {
		fmt.Fprintf(stdout, "rpcd %s  scrape failed: %v\n", cfg.metrics, err)
	}
	succeeded := err == nil
	tick := time.NewTicker(cfg.interval)
	defer tick.Stop()
	for i := 0; cfg.n == 0 || i < cfg.n; i++ {
		<-tick.C
		cur, err := scrapeStats(context.Background(), hc, url)
		if clear {
			fmt.Fprint(stdout, clearScreen)
		} else if i > 0 || prev == nil {
			fmt.Fprintln(stdout)
		}
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "rpcd %s  scrape failed: %v  %s\n", cfg.metrics, err, time.Now().Format(time.TimeOnly))
			continue
		case prev == nil:
			fmt.Fprintf(stdout, "rpcd %s  scraped; the first table follows the next scrape\n", cfg.metrics)
		default:
			printStats(stdout, cfg.metrics, prev, cur)
		}
		prev, succeeded = cur, true
	}
	if !succeeded {
		fmt.Fprintf(stderr, "rpcctl: every scrape of %s failed\n", url)
		return 1
	}
	return 0
}
