// Package exporter serves rpcd's shared counters (package metrics) over
// HTTP, as the master runs it: GET /metrics in the Prometheus text format,
// GET /readyz (200 while the server is ready, else 503) and GET /livez. It
// reads the region at scrape time, through a prometheus.Collector, and
// never writes to it.
package exporter

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rpcd/rpcd/metrics"
)

// Source is what the exporter reads. Each function is called on scrape
// goroutines and must be safe for them.
type Source struct {
	// Region returns the shared counters, nil while there are none yet.
	Region func() *metrics.Region
	// Generation returns the serving generation.
	Generation func() int
	// Ready reports whether a full generation is ready and the server is
	// not stopping.
	Ready func() bool
	// Version is the build's version, for rpcd_build_info.
	Version, GoVersion string
}

// Handler returns the HTTP handler of /metrics, /readyz and /livez.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck // the scraper went away
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("live\n")) //nolint:errcheck // the scraper went away
	})
	return mux
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Descriptions of every metric; the README lists them.
var (
	dRequests   = desc("rpcd_requests_total", "Requests answered, by method (\"other\" for unregistered names), answer code and worker slot.", "method", "code", "slot")
	dDuration   = desc("rpcd_request_duration_seconds", "Time from reading a request to answering it, by method and worker slot.", "method", "slot")
	dInFlight   = desc("rpcd_requests_in_flight", "Blocking and batch calls queued or running, not answered yet.", "slot")
	dOpen       = desc("rpcd_connections_open", "Client connections open.", "slot")
	dAccepted   = desc("rpcd_connections_accepted_total", "Client connections accepted.", "slot")
	dClosed     = desc("rpcd_connections_closed_total", "Client connections closed, by reason.", "slot", "reason")
	dRead       = desc("rpcd_read_bytes_total", "Bytes read from client connections.", "slot")
	dWritten    = desc("rpcd_written_bytes_total", "Bytes written to client connections.", "slot")
	dQueue      = desc("rpcd_pool_queue_depth", "Blocking calls waiting in the worker's pool queue.", "slot")
	dRejected   = desc("rpcd_pool_rejected_total", "Blocking and batch calls the worker answered overloaded (queue full) or timeout (past -handler-timeout); a handler's own answers with these codes are not counted.", "slot", "code")
	dStarts     = desc("rpcd_worker_starts_total", "Worker processes started, by cause: slot (first or after an exit), recycle, rollout.", "slot", "cause")
	dExits      = desc("rpcd_worker_exits_total", "Worker processes ended, by cause: clean (exit 0), crash, killed (by the master).", "slot", "cause")
	dDropped    = desc("rpcd_access_log_dropped_total", "Access log records dropped because the log's buffer was full.", "slot")
	dMissed     = desc("rpcd_worker_heartbeat_timeouts_total", "Workers killed for sending no heartbeat within -worker-timeout.", "slot")
	dWorkers    = desc("rpcd_workers", "Worker processes running, draining ones included.", "slot")
	dGeneration = desc("rpcd_generation", "The serving generation: 1 at start, one more per completed reload or upgrade.")
	dReloads    = desc("rpcd_reloads_total", "Reloads (SIGHUP), by result.", "result")
	dUpgrades   = desc("rpcd_upgrades_total", "Binary upgrades (SIGUSR2), by result.", "result")
	dReady      = desc("rpcd_ready", "1 while a full generation is ready and the server is not stopping, else 0.")
	dBuild      = desc("rpcd_build_info", "Always 1; the labels name the build.", "version", "goversion")
)

// collector reads the region on each scrape.
type collector struct{ src Source }

func newCollector(src Source) *collector { return &collector{src: src} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRequests, dDuration, dInFlight, dOpen, dAccepted, dClosed,
		dRead, dWritten, dQueue, dRejected, dStarts, dExits, dMissed, dDropped, dWorkers, dGeneration,
		dReloads, dUpgrades, dReady, dBuild} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ready := 0.0
	if c.src.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(dReady, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(dGeneration, prometheus.GaugeValue, float64(c.src.Generation()))
	ch <- prometheus.MustNewConstMetric(dBuild, prometheus.GaugeValue, 1, c.src.Version, c.src.GoVersion)
	r := c.src.Region()
	if r == nil {
		return
	}
	snap := r.Snapshot()
	outcomes(ch, dReloads, snap.Reloads)
	outcomes(ch, dUpgrades, snap.Upgrades)
	for i := range snap.Slots {
		collectSlot(ch, snap.Methods, &snap.Slots[i])
	}
}

func outcomes(ch chan<- prometheus.Metric, d *prometheus.Desc, o metrics.Outcomes) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(o.Succeeded), "succeeded")
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(o.Failed), "failed")
}

func collectSlot(ch chan<- prometheus.Metric, methods []string, st *metrics.SlotStats) {
	slot := strconv.Itoa(st.Slot)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{slot}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), slot)
	}
	for i := range st.Rows {
		row := &st.Rows[i]
		method := "other"
		if i < len(methods) {
			method = methods[i]
		}
		collectRow(ch, method, slot, row)
	}
	s := &st.Scalars
	counter(dAccepted, s[metrics.Accepted])
	for r, reason := range metrics.CloseReasons {
		counter(dClosed, s[metrics.Closed(r)], reason)
	}
	counter(dRead, s[metrics.BytesRead])
	counter(dWritten, s[metrics.BytesWritten])
	counter(dRejected, s[metrics.PoolOverloaded], "overloaded")
	counter(dRejected, s[metrics.PoolTimeouts], "timeout")
	for i, cause := range metrics.StartCauses {
		counter(dStarts, s[metrics.Starts(i)], cause)
	}
	for i, cause := range metrics.ExitCauses {
		counter(dExits, s[metrics.Exits(i)], cause)
	}
	counter(dMissed, s[metrics.MissedBeats])
	counter(dDropped, s[metrics.AccessDropped])
	gauge(dInFlight, s[metrics.InFlight])
	gauge(dOpen, s[metrics.OpenConns])
	gauge(dQueue, s[metrics.QueueDepth])
	gauge(dWorkers, uint64(st.Workers))
}

// collectRow emits one method's request counts and histogram; a method
// never called has no series.
func collectRow(ch chan<- prometheus.Metric, method, slot string, row *metrics.Row) {
	n := row.Requests()
	if n == 0 {
		return
	}
	for code, v := range row.Codes {
		if v > 0 {
			ch <- prometheus.MustNewConstMetric(dRequests, prometheus.CounterValue, float64(v), method, metrics.Codes[code], slot)
		}
	}
	buckets := make(map[float64]uint64, len(metrics.Buckets))
	var cum uint64
	for i, le := range metrics.Buckets {
		cum += row.Buckets[i]
		buckets[le] = cum
	}
	count := cum + row.Buckets[len(metrics.Buckets)]
	ch <- prometheus.MustNewConstHistogram(dDuration, count, float64(row.SumNanos)/1e9, buckets, method, slot)
}
