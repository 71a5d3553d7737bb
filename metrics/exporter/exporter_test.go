package exporter

import (
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rpcd/rpcd/metrics"
)

// testRegion is a region over plain memory, with worker pid 100 of slot 1
// having answered three pings, one unknown method, and dropped an access
// log record.
func testRegion(t *testing.T) *metrics.Region {
	t.Helper()
	methods := []string{"ping"}
	r, err := metrics.Format(make([]byte, metrics.Size(methods, 2, 2)), methods, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	r.Claim(0, 1, 100)
	rec, err := r.Recorder(0)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec.Request(rec.Row([]byte("ping")), metrics.CodeOK, 200e3) // 200µs
	}
	rec.Request(rec.Row([]byte("nosuch")), metrics.CodeIndex("unknown_method"), 1e3)
	rec.Add(metrics.AccessDropped, 1)
	rec.Add(metrics.PoolTimeouts, 2)
	rec.Set(metrics.OpenConns, 2)
	rec.Publish()
	r.Count(1, metrics.Starts(0))
	r.CountUpgrade(true)
	return r
}

// parse reads a text exposition.
func parse(t *testing.T, rr *httptest.ResponseRecorder) map[string]*dto.MetricFamily {
	t.Helper()
	if rr.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rr.Code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rr.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
	return rr
}

// value is the sample of family name whose labels are exactly labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no %s", name)
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestMetricsOutput(t *testing.T) {
	ready, region := false, testRegion(t)
	h := Handler(Source{Region: func() *metrics.Region { return region },
		Generation: func() int { return 3 }, Ready: func() bool { return ready },
		Version: "v1.2.3", GoVersion: "go1.x"})
	fams := parse(t, get(t, h, "/metrics"))
	counters := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rpcd_requests_total", map[string]string{"method": "ping", "code": "ok", "slot": "1"}, 3},
		{"rpcd_requests_total", map[string]string{"method": "other", "code": "unknown_method", "slot": "1"}, 1},
		{"rpcd_access_log_dropped_total", map[string]string{"slot": "1"}, 1},
		{"rpcd_pool_rejected_total", map[string]string{"slot": "1", "code": "timeout"}, 2},
		{"rpcd_pool_rejected_total", map[string]string{"slot": "1", "code": "overloaded"}, 0},
		{"rpcd_worker_starts_total", map[string]string{"slot": "1", "cause": "slot"}, 1},
		{"rpcd_upgrades_total", map[string]string{"result": "succeeded"}, 1},
		{"rpcd_reloads_total", map[string]string{"result": "failed"}, 0},
	}
	for _, c := range counters {
		if got := value(t, fams, c.name, c.labels).GetCounter().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	gauges := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rpcd_connections_open", map[string]string{"slot": "1"}, 2},
		{"rpcd_workers", map[string]string{"slot": "1"}, 1},
		{"rpcd_generation", map[string]string{}, 3},
		{"rpcd_ready", map[string]string{}, 0},
		{"rpcd_build_info", map[string]string{"version": "v1.2.3", "goversion": "go1.x"}, 1},
	}
	for _, g := range gauges {
		if got := value(t, fams, g.name, g.labels).GetGauge().GetValue(); got != g.want {
			t.Errorf("%s%v = %v, want %v", g.name, g.labels, got, g.want)
		}
	}
	hist := value(t, fams, "rpcd_request_duration_seconds", map[string]string{"method": "ping", "slot": "1"}).GetHistogram()
	if hist.GetSampleCount() != 3 || hist.GetSampleSum() != 600e-6 {
		t.Errorf("ping histogram count %d sum %v, want 3 and 0.0006", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.Bucket { // cumulative: none below 200µs, all from 250µs
		want := uint64(0)
		if b.GetUpperBound() >= 250e-6 {
			want = 3
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if len(hist.Bucket) != len(metrics.Buckets)+1 { // and +Inf
		t.Errorf("%d buckets, want %d", len(hist.Bucket), len(metrics.Buckets)+1)
	}
	if len(fams["rpcd_requests_total"].Metric) != 2 {
		t.Errorf("requests series %d, want 2 (methods never called have none)", len(fams["rpcd_requests_total"].Metric))
	}
	if got := get(t, h, "/readyz").Code; got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while not ready: %d", got)
	}
	ready = true
	if got := get(t, h, "/readyz").Code; got != http.StatusOK {
		t.Errorf("/readyz when ready: %d", got)
	}
	if got := get(t, h, "/livez").Code; got != http.StatusOK {
		t.Errorf("/livez: %d", got)
	}
}

// Before the master has a region, the endpoint serves its own gauges only.
func TestMetricsWithoutRegion(t *testing.T) {
	h := Handler(Source{Region: func() *metrics.Region { return nil },
		Generation: func() int { return 0 }, Ready: func() bool { return false }})
	fams := parse(t, get(t, h, "/metrics"))
	if _, ok := fams["rpcd_requests_total"]; ok || fams["rpcd_ready"] == nil {
		t.Fatalf("families without a region: %v", fams)
	}
}
