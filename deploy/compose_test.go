package deploy

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
)

// freePortRange finds n consecutive ports free on 127.0.0.1.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 65535 {
			continue
		}
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if free = err == nil; free {
				l.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestComposeReplicas brings up deploy/compose/docker-compose.yml and
// spreads calls over the replicas' published ports; every replica answers,
// and every replica's published metrics port answers /readyz.
func TestComposeReplicas(t *testing.T) {
	t.Parallel()
	image := testImage(t)
	tool, ok := composeTool()
	if !ok {
		t.Skip("install docker-compose (or the compose plugin) to run the Compose test")
	}
	const replicas = 3
	base := freePortRange(t, 2*replicas)
	metricsBase := base + replicas
	project := "rpcdtest" + randomSuffix()
	env := []string{
		"RPCD_IMAGE=" + image,
		fmt.Sprintf("RPCD_PORTS=%d-%d", base, base+replicas-1),
		fmt.Sprintf("RPCD_METRICS_PORTS=%d-%d", metricsBase, metricsBase+replicas-1),
	}
	compose := func(args ...string) (string, error) {
		return tryRun(env, tool[0], append(append(tool[1:], "-p", project, "-f", "compose/docker-compose.yml"), args...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose("logs", "--no-color")
			t.Logf("compose logs:\n%s", out)
		}
		if _, err := compose("down", "-v", "--remove-orphans", "-t", "10"); err != nil {
			t.Error(err)
		}
	})
	if _, err := compose("up", "-d"); err != nil {
		t.Fatal(err)
	}
	ids, err := compose("ps", "-q")
	if err != nil {
		t.Fatal(err)
	}
	ports, metrics := map[string]bool{}, map[string]bool{}
	for _, id := range strings.Fields(ids) {
		c := &container{t: t, id: id}
		ports[c.published(8080)] = true
		metrics[c.published(metricsPortInImage)] = true
	}
	if len(ports) != replicas {
		t.Fatalf("%d replicas published on %d distinct 127.0.0.1 ports %v, want %d", len(strings.Fields(ids)), len(ports), ports, replicas)
	}
	for addr := range ports {
		waitServing(t, addr, 30*time.Second)
	}
	answered := map[string]int{}
	for i := range 30 {
		addr := fmt.Sprintf("127.0.0.1:%d", base+i%replicas)
		if err := pingOnce(addr, strconv.Itoa(i)); err != nil {
			t.Fatalf("call %d to %s: %v", i, addr, err)
		}
		answered[addr]++
	}
	for addr := range ports {
		if answered[addr] == 0 {
			t.Errorf("replica on %s answered no call", addr)
		}
	}
	if len(metrics) != replicas {
		t.Fatalf("metrics published on %d distinct 127.0.0.1 ports %v, want %d", len(metrics), metrics, replicas)
	}
	for addr := range metrics {
		// A replica serves once its first worker is ready, /readyz once all are.
		waitfor.Until(t, 30*time.Second, addr+"/readyz answering 200", func() bool {
			code, _, err := httpGet("http://" + addr + "/readyz")
			return err == nil && code == http.StatusOK
		})
	}
	t.Logf("answers per replica: %v", answered)
}
