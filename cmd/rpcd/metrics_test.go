//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	rpcclient "github.com/rpcd/rpcd/client"
	"github.com/rpcd/rpcd/internal/tcptest"
	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/protocol"
)

// startMetricsServer runs rpcd with its metrics endpoint on a free port
// and returns the server and the endpoint's base URL.
func startMetricsServer(t *testing.T, args ...string) (*server, string) {
	t.Helper()
	s := startServer(t, append([]string{"-workers=2", "-metrics-listen=127.0.0.1:0"}, args...)...)
	e := s.logs.wait(t, 5*time.Second, func(e logEntry) bool { return e.Msg == "serving metrics" })
	addr, _ := e.Fields["addr"].(string)
	return s, "http://" + addr
}

// scrape parses the endpoint's /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sumWhere sums the samples of family name whose labels include want.
func sumWhere(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// callN makes n calls of method over c and returns how many were answered
// without error.
func callN(t *testing.T, c *rpcclient.Client, n int, method, params string) int {
	t.Helper()
	ok := 0
	for range n {
		if _, _, err := c.Call(context.Background(), method, []byte(params)); err == nil {
			ok++
		}
	}
	return ok
}

// The endpoint counts what was answered, by method and code, and its
// counts survive a worker killed outright.
func TestMetricsEndpoint(t *testing.T) {
	s, base := startMetricsServer(t)
	if got := status(t, base+"/livez"); got != http.StatusOK {
		t.Fatalf("/livez: %d", got)
	}
	waitfor.Until(t, 10*time.Second, "/readyz 200", func() bool { return status(t, base+"/readyz") == http.StatusOK })
	c, err := rpcclient.Dial(s.addr, rpcclient.Options{Conns: 8, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pings := callN(t, c, 200, "ping", `"x"`)
	callN(t, c, 3, "nosuch", `1`)
	want := func(what string, ping float64) {
		t.Helper()
		var fams map[string]*dto.MetricFamily
		ok := waitfor.Poll(10*time.Second, func() bool {
			fams = scrape(t, base)
			return sumWhere(fams, "rpcd_requests_total", map[string]string{"method": "ping", "code": "ok"}) == ping
		})
		if !ok {
			t.Fatalf("%s: ping ok = %v, want %v", what, sumWhere(fams, "rpcd_requests_total", map[string]string{"method": "ping", "code": "ok"}), ping)
		}
		if got := sumWhere(fams, "rpcd_requests_total", map[string]string{"method": "other", "code": "unknown_method"}); got != 3 {
			t.Fatalf("%s: unknown methods counted %v, want 3", what, got)
		}
		if got := sumWhere(fams, "rpcd_request_duration_seconds", map[string]string{"method": "ping"}); got != ping {
			t.Fatalf("%s: ping histogram count %v, want %v", what, got, ping)
		}
		if got := sumWhere(fams, "rpcd_connections_accepted_total", nil); got < 8 {
			t.Fatalf("%s: %v connections accepted, want at least 8", what, got)
		}
	}
	want("running", float64(pings))
	victim := s.workerPids()[0]
	syscall.Kill(victim, syscall.SIGKILL)
	s.logs.wait(t, 10*time.Second, func(e logEntry) bool {
		return e.Msg == "worker exited" && e.Fields["pid"] == float64(victim)
	})
	want("after kill -9", float64(pings))
	fams := scrape(t, base)
	if got := sumWhere(fams, "rpcd_worker_exits_total", map[string]string{"cause": "crash"}); got != 1 {
		t.Fatalf("crashes counted %v, want 1", got)
	}
	pings += callN(t, c, 100, "ping", `"y"`)
	want("after the restart", float64(pings))
}

// A real Prometheus scrapes rpcd every second while a worker is killed
// and the server reloaded: the sum it sees matches what was answered, and
// no series ever goes back. The client's connection handshakes
// (rpcd.hello) count under method "other", so the sum is over pings.
// Without a Prometheus server it skips, or fails with
// RPCD_REQUIRE_PROMETHEUS=1, as CI sets.
func TestPrometheusScrapesAcrossCrashAndReload(t *testing.T) {
	const promBin = "/usr/bin/prometheus"
	if _, err := os.Stat(promBin); err != nil {
		if os.Getenv("RPCD_REQUIRE_PROMETHEUS") == "1" {
			t.Fatalf("RPCD_REQUIRE_PROMETHEUS=1 and no Prometheus server at %s: %v", promBin, err)
		}
		t.Skip("no Prometheus server: apt-get install prometheus")
	}
	s, base := startMetricsServer(t)
	prom := startPrometheus(t, promBin, base[len("http://"):])
	c, err := rpcclient.Dial(s.addr, rpcclient.Options{Conns: 8, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	answered := callN(t, c, 500, "ping", `"before"`)
	prom.waitValue(t, `sum(rpcd_requests_total{method="ping"})`, float64(answered))

	victim := s.workerPids()[0]
	syscall.Kill(victim, syscall.SIGKILL)
	s.logs.wait(t, 10*time.Second, func(e logEntry) bool {
		return e.Msg == "worker exited" && e.Fields["pid"] == float64(victim)
	})
	syscall.Kill(s.pid(), syscall.SIGHUP)
	s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "new generation ready" })

	answered += callN(t, c, 300, "ping", `"after"`)
	prom.waitValue(t, `sum(rpcd_requests_total{method="ping"})`, float64(answered))
	prom.waitValue(t, "rpcd_generation", 2)
	resets := prom.query(t, "resets(rpcd_requests_total[5m])")
	if len(resets) == 0 {
		t.Fatal("no rpcd_requests_total series in Prometheus")
	}
	for _, r := range resets {
		if r.value != 0 {
			t.Fatalf("series %v went back %v times", r.labels, r.value)
		}
	}
	t.Logf("Prometheus: sum(rpcd_requests_total{method=\"ping\"}) = %d answered, %d series, no resets", answered, len(resets))
}

// promServer is a Prometheus server run by a test.
type promServer struct{ base string }

func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: rpcd\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := tcptest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	p := &promServer{base: "http://" + addr}
	waitfor.Until(t, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query; a failed request yields no samples.
func (p *promServer) query(t *testing.T, q string) []sample {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil
	}
	var out []sample
	for _, r := range body.Data.Result {
		str, _ := r.Value[1].(string)
		v, _ := strconv.ParseFloat(str, 64)
		out = append(out, sample{labels: r.Metric, value: v})
	}
	return out
}

// waitValue waits until q's single sample is want, as new scrapes arrive.
func (p *promServer) waitValue(t *testing.T, q string, want float64) {
	t.Helper()
	var last []sample
	ok := waitfor.Poll(30*time.Second, func() bool {
		last = p.query(t, q)
		return len(last) == 1 && last[0].value == want
	})
	if !ok {
		t.Fatalf("Prometheus %s = %v, want %v", q, last, want)
	}
}

// Counters live in the region the master hands over on USR2: after an
// upgrade the new image's endpoint counts every request answered before
// and after it, and no series went down.
func TestMetricsSurviveUpgrade(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rpcd")
	installBinary(t, bin)
	s := launchBinary(t, bin, "-listen=127.0.0.1:0", "-workers=2", "-log-format=json", "-metrics-listen=127.0.0.1:0")
	ready := s.logs.wait(t, 30*time.Second, func(e logEntry) bool { return e.Msg == "master ready" })
	s.addr, _ = ready.Fields["addr"].(string)
	base := metricsBase(t, s, 0)

	answered := callFresh(t, s.addr, 300)
	before := waitRequests(t, base, answered)
	from := len(s.logs.all())
	signal(t, s, syscall.SIGUSR2)
	waitLog(t, s, from, 60*time.Second, "upgraded generation ready", func(es []logEntry) bool {
		return findMsg(es, "new generation ready", "reason", "upgrade") != nil
	})
	base = metricsBase(t, s, from)
	answered += callFresh(t, s.addr, 200)
	after := waitRequests(t, base, answered)
	for series, v := range before {
		if after[series] < v {
			t.Errorf("%s went down across the upgrade: %v -> %v", series, v, after[series])
		}
	}
	if got := sumWhere(scrape(t, base), "rpcd_upgrades_total", map[string]string{"result": "succeeded"}); got != 1 {
		t.Fatalf("upgrades succeeded %v, want 1", got)
	}
}

// metricsBase is the endpoint of the first "serving metrics" line from
// the from'th log entry on.
func metricsBase(t *testing.T, s *server, from int) string {
	t.Helper()
	var addr string
	waitLog(t, s, from, 30*time.Second, "serving metrics", func(es []logEntry) bool {
		for _, e := range es {
			if e.Msg == "serving metrics" {
				addr, _ = e.Fields["addr"].(string)
				return true
			}
		}
		return false
	})
	return "http://" + addr
}

// callFresh pings n times over a new client and returns the answers.
func callFresh(t *testing.T, addr string, n int) int {
	t.Helper()
	c, err := rpcclient.Dial(addr, rpcclient.Options{Conns: 4, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return callN(t, c, n, "ping", `"x"`)
}

// waitRequests waits until the endpoint counts answered pings and returns
// every rpcd_requests_total series by its labels.
func waitRequests(t *testing.T, base string, answered int) map[string]float64 {
	t.Helper()
	var fams map[string]*dto.MetricFamily
	if !waitfor.Poll(10*time.Second, func() bool {
		fams = scrape(t, base)
		return sumWhere(fams, "rpcd_requests_total", map[string]string{"method": "ping"}) == float64(answered)
	}) {
		t.Fatalf("rpcd_requests_total of ping sums to %v, want %d", sumWhere(fams, "rpcd_requests_total", map[string]string{"method": "ping"}), answered)
	}
	series := map[string]float64{}
	for _, m := range fams["rpcd_requests_total"].Metric {
		series[fmt.Sprint(m.Label)] = m.Counter.GetValue()
	}
	return series
}

// counterSeries returns every counter series and histogram count of fams
// by name and labels.
func counterSeries(fams map[string]*dto.MetricFamily) map[string]float64 {
	series := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name + fmt.Sprint(m.Label)
			switch {
			case m.Counter != nil:
				series[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				series[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return series
}

// noneDecreased fails t if a series of before is lower, or gone, in after.
func noneDecreased(t *testing.T, when string, before, after map[string]float64) {
	t.Helper()
	for series, v := range before {
		if got, ok := after[series]; !ok || got < v {
			t.Errorf("%s: %s went from %v to %v (present %v)", when, series, v, got, ok)
		}
	}
}

// Counters only grow while TTIN adds a slot and TTOU removes it again: the
// removed slot's counts stay, folded into its totals.
func TestMetricsMonotonicAcrossScaling(t *testing.T) {
	s, base := startMetricsServer(t)
	answered := callFresh(t, s.addr, 100)
	waitRequests(t, base, answered)
	before := counterSeries(scrape(t, base))

	signal(t, s, syscall.SIGTTIN)
	waitLog(t, s, 0, 30*time.Second, "the added worker ready", func(es []logEntry) bool {
		return findMsg(es, "worker ready", "slot", float64(2)) != nil
	})
	answered += callFresh(t, s.addr, 200)
	waitRequests(t, base, answered)
	grown := counterSeries(scrape(t, base))
	noneDecreased(t, "after TTIN", before, grown)

	from := len(s.logs.all())
	signal(t, s, syscall.SIGTTOU)
	waitLog(t, s, from, 10*time.Second, "slot 2 removed", func(es []logEntry) bool {
		return findMsg(es, "removing worker", "slot", float64(2)) != nil
	})
	waitfor.Until(t, 30*time.Second, "slot 2's worker folded", func() bool {
		return sumWhere(scrape(t, base), "rpcd_workers", map[string]string{"slot": "2"}) == 0
	})
	answered += callFresh(t, s.addr, 100)
	waitRequests(t, base, answered)
	shrunkFams := scrape(t, base)
	shrunk := counterSeries(shrunkFams)
	noneDecreased(t, "after TTOU", grown, shrunk)
	if sumWhere(shrunkFams, "rpcd_worker_exits_total", map[string]string{"slot": "2"}) != 1 {
		t.Fatal("the removed slot's worker exit not counted")
	}
}

// /readyz answers 200 during a reload, while the old generation serves,
// and 503 once a stop has begun.
func TestReadyzThroughReloadAndStop(t *testing.T) {
	config := filepath.Join(t.TempDir(), "rpcd.yaml")
	if err := os.WriteFile(config, []byte("workers: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, base := startMetricsServer(t, "-config="+config)
	waitfor.Until(t, 10*time.Second, "/readyz 200", func() bool { return status(t, base+"/readyz") == http.StatusOK })

	// Hold the reload: its configuration is a FIFO the test writes only
	// once it has checked /readyz, so the old generation serves on.
	fifo := config + ".fifo"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo, config); err != nil {
		t.Fatal(err)
	}
	from := len(s.logs.all())
	signal(t, s, syscall.SIGHUP)
	fd := -1
	waitfor.Until(t, 10*time.Second, "the reload reading its configuration", func() bool {
		var err error
		fd, err = syscall.Open(config, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		return err == nil // ENXIO until rpcd opens it for reading
	})
	if got := status(t, base+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz %d during a reload, with the old generation serving", got)
	}
	mustPing(t, dial(t, s.addr), `"during the reload"`)
	if gen := sumWhere(scrape(t, base), "rpcd_generation", nil); gen != 1 {
		t.Fatalf("generation %v while the reload reads its configuration, want 1", gen)
	}
	syscall.Write(fd, []byte("workers: 2\n"))
	syscall.Close(fd)
	waitLog(t, s, from, 30*time.Second, "the reload done", func(es []logEntry) bool {
		return findMsg(es, "new generation ready", "reason", "reload") != nil
	})
	waitfor.Until(t, 10*time.Second, "/readyz 200 after the reload", func() bool { return status(t, base+"/readyz") == http.StatusOK })

	// Hold the stop: a worker's drain waits for the rest of a frame begun.
	// The ping first makes sure a worker has accepted the connection: one
	// still queued on a listener when the stop closes it is reset.
	c := dial(t, s.addr)
	mustPing(t, c, `"accepted"`)
	frame := protocol.AppendRequest(nil, c.order, "ping", []byte(`"held"`))
	if _, err := c.Write(frame[:len(frame)-2]); err != nil {
		t.Fatal(err)
	}
	from = len(s.logs.all())
	signal(t, s, syscall.SIGTERM)
	waitLog(t, s, from, 10*time.Second, "the stop begun", func(es []logEntry) bool {
		return countMsg(es, "stopping workers") > 0
	})
	if got := status(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d during a stop, want 503", got)
	}
	if _, err := c.Write(frame[len(frame)-2:]); err != nil {
		t.Fatal(err)
	}
	if out, result, err := c.recv(); err != nil || out != "pong" || result != `"held"` {
		t.Fatalf("held request answered %q %q %v", out, result, err)
	}
	if code := s.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("master exited %d, want 0", code)
	}
}
