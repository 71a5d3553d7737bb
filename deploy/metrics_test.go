package deploy

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rpcd/rpcd/internal/waitfor"
)

// metricsPortInImage is where the image's master serves /metrics, /readyz
// and /livez.
const metricsPortInImage = 9100

// httpGet fetches url and returns its status and body.
func httpGet(url string) (int, string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// scrape reads and parses the Prometheus text at addr's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := httpGet("http://" + addr + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// sum adds the values of family name's samples whose labels include match.
func sum(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	total := 0.0
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

// TestContainerMetrics runs the image as is with its metrics port
// published: once the health check is healthy, /readyz and /livez answer
// 200 and /metrics counts the pings sent through the RPC port.
func TestContainerMetrics(t *testing.T) {
	t.Parallel()
	publish := fmt.Sprintf("127.0.0.1:0:%d", metricsPortInImage)
	c := runContainer(t, []string{"-p", publish}, "-workers=2")
	metrics := c.published(metricsPortInImage)
	waitfor.Until(t, 40*time.Second, "health status healthy", func() bool {
		return c.inspect("{{.State.Health.Status}}") == "healthy"
	})
	for _, path := range []string{"/readyz", "/livez"} {
		if code, body, err := httpGet("http://" + metrics + path); err != nil || code != http.StatusOK {
			t.Errorf("GET %s: %d %q %v, want 200", path, code, body, err)
		}
	}
	const pings = 50
	for i := range pings {
		if err := pingOnce(c.addr, strconv.Itoa(i)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	// The test's own pings, the readiness wait's and the health checks'.
	okPings := map[string]string{"method": "ping", "code": "ok"}
	var fams map[string]*dto.MetricFamily
	counted := waitfor.Poll(10*time.Second, func() bool {
		fams = scrape(t, metrics)
		return sum(fams, "rpcd_requests_total", okPings) >= pings+1
	})
	if !counted {
		t.Errorf("rpcd_requests_total%v = %v, want at least %d", okPings, sum(fams, "rpcd_requests_total", okPings), pings+1)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{name: "rpcd_build_info", labels: map[string]string{"version": "test"}, want: 1},
		{name: "rpcd_ready", want: 1},
		{name: "rpcd_workers", want: 2},
		{name: "rpcd_generation", want: 1},
	}
	for _, chk := range checks {
		if got := sum(fams, chk.name, chk.labels); got != chk.want {
			t.Errorf("%s%v = %v, want %v", chk.name, chk.labels, got, chk.want)
		}
	}
}
