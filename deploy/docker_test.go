package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/procfs"
	"github.com/rpcd/rpcd/internal/waitfor"
)

var (
	dockerOnce sync.Once
	dockerErr  error
	imageOnce  sync.Once
	imageTag   string // set once built, removed by TestMain
	imageErr   error
)

// requireDocker skips the test unless a Docker engine answers.
func requireDocker(t *testing.T) {
	t.Helper()
	dockerOnce.Do(func() { _, dockerErr = tryRun(nil, "docker", "info") })
	if dockerErr != nil {
		t.Skipf("install and start Docker to run the container tests (docker info: %v)", dockerErr)
	}
}

// testImage builds the image with build.sh once per run and returns its tag.
func testImage(t *testing.T) string {
	t.Helper()
	requireDocker(t)
	imageOnce.Do(func() {
		tag := "rpcd:test-" + randomSuffix()
		if _, imageErr = tryRun([]string{"VERSION=test"}, "./build.sh", tag); imageErr == nil {
			imageTag = tag
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageTag
}

func removeImage() {
	if imageTag != "" {
		exec.Command("docker", "rmi", "-f", imageTag).Run()
	}
}

// container is one rpcd container started by a test.
type container struct {
	t    *testing.T
	id   string
	addr string // the published port on 127.0.0.1
}

// runContainer starts the image with extra docker run options and rpcd
// flags, publishes its port on 127.0.0.1 only, and waits until it answers.
func runContainer(t *testing.T, dockerArgs []string, rpcdArgs ...string) *container {
	t.Helper()
	return runContainerOn(t, 8080, dockerArgs, rpcdArgs...)
}

// runContainerOn is runContainer for a server that listens on port in the
// container.
func runContainerOn(t *testing.T, port int, dockerArgs []string, rpcdArgs ...string) *container {
	t.Helper()
	image := testImage(t)
	args := append([]string{"run", "-d", "--name", "rpcd-test-" + randomSuffix(), "-p", fmt.Sprintf("127.0.0.1:0:%d", port)}, dockerArgs...)
	id := run(t, "docker", append(append(args, image), rpcdArgs...)...)
	c := &container{t: t, id: id}
	t.Cleanup(c.remove)
	c.addr = c.published(port)
	waitServing(t, c.addr, 30*time.Second)
	return c
}

// published is the 127.0.0.1 address where the container's port is
// published.
func (c *container) published(port int) string {
	c.t.Helper()
	for _, line := range strings.Split(run(c.t, "docker", "port", c.id, fmt.Sprintf("%d/tcp", port)), "\n") {
		if strings.HasPrefix(line, "127.0.0.1:") {
			return line
		}
	}
	c.t.Fatalf("port %d is not published on 127.0.0.1", port)
	return ""
}

// remove deletes the container, showing its logs if the test failed.
func (c *container) remove() {
	if c.t.Failed() {
		out, _ := exec.Command("docker", "logs", c.id).CombinedOutput()
		c.t.Logf("container logs:\n%s", out)
	}
	exec.Command("docker", "rm", "-f", "-v", c.id).Run()
}

func (c *container) inspect(format string) string {
	return run(c.t, "docker", "inspect", "-f", format, c.id)
}

// masterPid is the host pid of the container's PID 1.
func (c *container) masterPid() int {
	pid, err := strconv.Atoi(c.inspect("{{.State.Pid}}"))
	if err != nil || pid <= 0 {
		c.t.Fatalf("container has no running PID 1: %q", c.inspect("{{.State.Status}}"))
	}
	return pid
}

// workerPids are the host pids of the master's live children: the workers.
func (c *container) workerPids() []int {
	return procfs.Children(c.masterPid(), procfs.Live)
}

// logEntry is one JSON log line of the container.
type logEntry map[string]any

func (e logEntry) msg() string { s, _ := e["msg"].(string); return s }

// logs returns the container's JSON log lines.
func (c *container) logs() []logEntry {
	out, err := exec.Command("docker", "logs", c.id).CombinedOutput()
	if err != nil {
		c.t.Fatalf("docker logs: %v\n%s", err, out)
	}
	var entries []logEntry
	for _, line := range strings.Split(string(out), "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// maxImageSize bounds the image. It was 11,382,946 bytes when set: 7.5 MB
// of rpcd and its runtime, 2.4 MB of client_golang and its protobuf
// encoder behind /metrics, the rest net/http and the etcd gateway client
// (README "Run in Docker"). Passing it means a new dependency to measure.
const maxImageSize = 12e6

func TestImage(t *testing.T) {
	image := testImage(t)
	var info struct {
		Size   int64
		Config struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			Env          []string
			StopSignal   string
			ExposedPorts map[string]any
			Healthcheck  struct{ Test []string }
		}
	}
	if err := json.Unmarshal([]byte(run(t, "docker", "image", "inspect", "-f", "{{json .}}", image)), &info); err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	t.Logf("image size %.1f MB", float64(info.Size)/1e6)
	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{name: "under 12 MB", ok: info.Size < maxImageSize, got: info.Size},
		{name: "runs as 65534:65534", ok: cfg.User == "65534:65534", got: cfg.User},
		{name: "exec-form entrypoint runs rpcd as PID 1", ok: len(cfg.Entrypoint) > 0 && cfg.Entrypoint[0] == "/rpcd", got: cfg.Entrypoint},
		{name: "listens on 0.0.0.0:8080", ok: slices.Contains(cfg.Entrypoint, "-listen=0.0.0.0:8080"), got: cfg.Entrypoint},
		{name: "logs json", ok: slices.Contains(cfg.Entrypoint, "-log-format=json"), got: cfg.Entrypoint},
		{name: "serves metrics on 0.0.0.0:9100", ok: slices.Contains(cfg.Entrypoint, "-metrics-listen=0.0.0.0:9100"), got: cfg.Entrypoint},
		{name: "port 8080 exposed", ok: cfg.ExposedPorts["8080/tcp"] != nil, got: cfg.ExposedPorts},
		{name: "port 9100 exposed", ok: cfg.ExposedPorts["9100/tcp"] != nil, got: cfg.ExposedPorts},
		{name: "graceful stop signal", ok: cfg.StopSignal == "SIGTERM" || cfg.StopSignal == "SIGQUIT", got: cfg.StopSignal},
		{name: "shell-free health check of PID 1's address", ok: slices.Equal(cfg.Healthcheck.Test, []string{"CMD", "/rpcd", "-check", "-check-pid=1"}), got: cfg.Healthcheck.Test},
		{name: "GOMAXPROCS not set", ok: !slices.ContainsFunc(cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") }), got: cfg.Env},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %v", c.name, c.got)
		}
	}
}

// TestContainerServes runs the image as is: the articles' Python client gets
// its answers through the published port, the master is PID 1 running as
// nobody with its workers as children, and the health check turns healthy.
func TestContainerServes(t *testing.T) {
	t.Parallel()
	c := runContainer(t, []string{"--cpus=2"})
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to run the seed client")
	}
	_, port, _ := strings.Cut(c.addr, ":")
	if out, err := exec.Command(python, "../cmd/rpcd/testdata/seed_client.py", "127.0.0.1", port).CombinedOutput(); err != nil {
		t.Fatalf("seed client: %v\n%s", err, out)
	}
	master := c.masterPid()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", master))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65534\t") {
		t.Errorf("master does not run as uid 65534:\n%s", status)
	}
	nspid := ""
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "NSpid:") {
			nspid = line
		}
	}
	if f := strings.Fields(nspid); len(f) < 3 || f[len(f)-1] != "1" {
		t.Errorf("rpcd's master is not PID 1 in the container: %q", nspid)
	}
	waitfor.Until(t, 10*time.Second, "two workers", func() bool { return len(c.workerPids()) == 2 })
	waitfor.Until(t, 40*time.Second, "health status healthy", func() bool {
		return c.inspect("{{.State.Health.Status}}") == "healthy"
	})
}

// TestHealthCheckFollowsListen runs the image on another -listen, given to
// docker run: the health check pings where the master listens and turns
// healthy.
func TestHealthCheckFollowsListen(t *testing.T) {
	t.Parallel()
	c := runContainerOn(t, 9090, nil, "-listen=0.0.0.0:9090", "-workers=1")
	waitfor.Until(t, 40*time.Second, "health status healthy", func() bool {
		return c.inspect("{{.State.Health.Status}}") == "healthy"
	})
}

// TestCPUQuotaSetsWorkers checks that --cpus, not the host's CPU count,
// sets the default worker count, and that -workers overrides it.
func TestCPUQuotaSetsWorkers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		dockerArgs  []string
		rpcdArgs    []string
		wantWorkers int
	}{
		{name: "one cpu", dockerArgs: []string{"--cpus=1"}, wantWorkers: 1},
		{name: "half a cpu", dockerArgs: []string{"--cpus=0.5"}, wantWorkers: 1},
		{name: "flag wins", dockerArgs: []string{"--cpus=1"}, rpcdArgs: []string{"-workers=3"}, wantWorkers: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runContainer(t, tt.dockerArgs, tt.rpcdArgs...)
			// The first ready worker serves; the master is ready once all are.
			ready := -1.0
			waitfor.Until(t, 30*time.Second, `"master ready"`, func() bool {
				for _, e := range c.logs() {
					if e.msg() == "master ready" {
						ready, _ = e["workers"].(float64)
						return true
					}
				}
				return false
			})
			if int(ready) != tt.wantWorkers {
				t.Errorf("master ready with workers=%v, want %d", ready, tt.wantWorkers)
			}
			if pids := c.workerPids(); len(pids) != tt.wantWorkers {
				t.Errorf("PID 1 has %d children %v, want %d", len(pids), pids, tt.wantWorkers)
			}
		})
	}
}

// TestKilledWorkerIsHealed kills a worker with SIGKILL from the host, which
// sees the container's processes: the same as `docker exec CONTAINER kill -9
// PID`, which an image without a shell or kill cannot run. The master reaps
// it, refills the slot, and pings keep being answered.
func TestKilledWorkerIsHealed(t *testing.T) {
	t.Parallel()
	c := runContainer(t, nil, "-workers=2")
	var before []int
	waitfor.Until(t, 10*time.Second, "two workers", func() bool { before = c.workerPids(); return len(before) == 2 })
	victim := before[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill worker %d: %v", victim, err)
	}
	var after []int
	waitfor.Until(t, 15*time.Second, "slot refilled", func() bool {
		after = c.workerPids()
		return len(after) == 2 && !slices.Contains(after, victim)
	})
	for i := range 20 {
		if err := pingOnce(c.addr, strconv.Itoa(i)); err != nil {
			t.Fatalf("ping %d after the kill: %v", i, err)
		}
	}
	reaped := false
	for _, e := range c.logs() {
		if e.msg() == "worker exited" && e["status"] == "signal: killed" {
			reaped = true
		}
	}
	if !reaped {
		t.Error(`no "worker exited" log line with status "signal: killed"`)
	}
	t.Logf("workers %v, then %v", before, after)
}
