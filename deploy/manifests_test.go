package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// defaultShutdownTimeout is rpcd's -shutdown-timeout default, as the
// manifests assume when they do not set it.
const defaultShutdownTimeout = 8 * time.Second

// shutdownTimeout is the -shutdown-timeout in flags, or the default.
func shutdownTimeout(t *testing.T, flags map[string]string) time.Duration {
	t.Helper()
	v, ok := flags["shutdown-timeout"]
	if !ok {
		return defaultShutdownTimeout
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("-shutdown-timeout=%s: %v", v, err)
	}
	return d
}

// listenPort is the port of the -listen in flags.
func listenPort(t *testing.T, where string, flags map[string]string) int {
	t.Helper()
	return flagPort(t, where, flags, "listen")
}

// metricsPort is the port of the -metrics-listen in flags.
func metricsPort(t *testing.T, where string, flags map[string]string) int {
	t.Helper()
	return flagPort(t, where, flags, "metrics-listen")
}

// flagPort is the port of the host:port flag name in flags.
func flagPort(t *testing.T, where string, flags map[string]string, name string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(flags[name])
	n, _ := strconv.Atoi(port)
	if err != nil || n == 0 {
		t.Fatalf("%s: no usable -%s in %v", where, name, flags)
	}
	return n
}

// imageFlags are the flags of deploy/Dockerfile's ENTRYPOINT.
func imageFlags(t *testing.T) map[string]string {
	t.Helper()
	entry := execForm(t, "ENTRYPOINT", dockerfile(t, "Dockerfile")["ENTRYPOINT"])
	return parseFlags(t, "ENTRYPOINT", entry[1:])
}

func TestDefaultShutdownTimeout(t *testing.T) {
	knownFlags(t)
	if !strings.Contains(helpText, "(default "+defaultShutdownTimeout.String()+")") {
		t.Errorf("rpcd -h does not show -shutdown-timeout's default as %v:\n%s", defaultShutdownTimeout, helpText)
	}
}

// dockerfile is the final stage of a Dockerfile: instruction -> arguments.
func dockerfile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	stage := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		op, args, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			stage = map[string]string{}
		}
		stage[op] = strings.Join(strings.Fields(args), " ")
	}
	return stage
}

// execForm parses an exec-form (JSON array) instruction argument.
func execForm(t *testing.T, where, arg string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(arg), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s: %q is not in exec form", where, arg)
	}
	return argv
}

func TestDockerfiles(t *testing.T) {
	plain := dockerfile(t, "Dockerfile")
	multi := dockerfile(t, "Dockerfile.multistage")
	for _, op := range []string{"FROM", "USER", "EXPOSE", "STOPSIGNAL", "HEALTHCHECK", "ENTRYPOINT"} {
		if plain[op] != multi[op] {
			t.Errorf("final stages differ in %s: %q and %q", op, plain[op], multi[op])
		}
	}
	if plain["FROM"] != "scratch" || plain["USER"] != "65534:65534" {
		t.Errorf("want FROM scratch and USER 65534:65534, got %q and %q", plain["FROM"], plain["USER"])
	}
	if s := plain["STOPSIGNAL"]; s != "SIGTERM" && s != "SIGQUIT" {
		t.Errorf("STOPSIGNAL %s is not a graceful stop", s)
	}
	if _, ok := plain["ENV"]; ok {
		t.Errorf("the image sets ENV %s; it must leave GOMAXPROCS and the rest to the user", plain["ENV"])
	}
	entry := execForm(t, "ENTRYPOINT", plain["ENTRYPOINT"])
	flags := parseFlags(t, "ENTRYPOINT", entry[1:])
	checkArgsAccepted(t, "ENTRYPOINT", entry[1:])
	port, metrics := listenPort(t, "ENTRYPOINT", flags), metricsPort(t, "ENTRYPOINT", flags)
	if want := fmt.Sprintf("%d %d", port, metrics); plain["EXPOSE"] != want {
		t.Errorf("EXPOSE %s, want the -listen and -metrics-listen ports %s", plain["EXPOSE"], want)
	}

	opts, cmd, _ := strings.Cut(plain["HEALTHCHECK"], "CMD ")
	probe := execForm(t, "HEALTHCHECK", cmd)
	probeFlags := parseFlags(t, "HEALTHCHECK", probe[1:])
	// PID 1 is the master; its own flags, the ENTRYPOINT's and any given
	// to docker run, say where it listens.
	if probe[0] != entry[0] || !slices.Contains(probe, "-check") || probeFlags["check-pid"] != "1" {
		t.Errorf("HEALTHCHECK %q must run %s -check -check-pid=1", probe, entry[0])
	}
	if listen, ok := probeFlags["listen"]; ok {
		t.Errorf("HEALTHCHECK sets -listen=%s, which -check-pid overrides", listen)
	}
	if timeout := optionDuration(t, opts, "--timeout"); timeout <= 2*time.Second {
		t.Errorf("HEALTHCHECK --timeout=%v leaves -check's 2s no room", timeout)
	}
}

// optionDuration reads --name=duration from Dockerfile instruction options.
func optionDuration(t *testing.T, opts, name string) time.Duration {
	t.Helper()
	for _, f := range strings.Fields(opts) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			return d
		}
	}
	t.Fatalf("no %s in %q", name, opts)
	return 0
}

// k8sObject is the part of a Kubernetes object the tests read.
type k8sObject struct {
	Kind     string
	Metadata struct {
		Name   string
		Labels map[string]string
	}
	Spec struct {
		Selector yaml.Node
		Ports    []struct {
			Name       string
			Port       int
			TargetPort yaml.Node `yaml:"targetPort"`
		}
		Template struct {
			Metadata struct{ Labels, Annotations map[string]string }
			Spec     podSpec
		}
		Endpoints []struct{ Port, Path string } // of a ServiceMonitor
	}
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name    string
		Command []string
		Args    []string
		Ports   []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop struct {
				Sleep struct{ Seconds int }
			} `yaml:"preStop"`
		}
	}
}

type probe struct {
	Exec      *struct{ Command []string }
	TCPSocket *struct{ Port yaml.Node } `yaml:"tcpSocket"`
	HTTPGet   *struct {
		Path string
		Port yaml.Node
	} `yaml:"httpGet"`
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

// readK8s decodes every document of every manifest in deploy/k8s.
func readK8s(t *testing.T) []k8sObject {
	t.Helper()
	paths, _ := filepath.Glob("k8s/*.yaml")
	var objs []k8sObject
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var obj k8sObject
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

// k8sManifests are the objects of deploy/k8s the tests check.
type k8sManifests struct {
	deploy, svc, monitor *k8sObject
	services             []k8sObject // every Service, headless included
}

// readManifests finds the rpcd Deployment, Service and ServiceMonitor.
func readManifests(t *testing.T) k8sManifests {
	t.Helper()
	var m k8sManifests
	for _, obj := range readK8s(t) {
		switch obj.Kind {
		case "Deployment":
			m.deploy = &obj
		case "Service":
			m.services = append(m.services, obj)
			if obj.Metadata.Name == "rpcd" {
				m.svc = &obj
			}
		case "ServiceMonitor":
			m.monitor = &obj
		}
	}
	if m.deploy == nil || m.svc == nil || m.monitor == nil {
		t.Fatal("want a Deployment, a Service named rpcd and a ServiceMonitor in deploy/k8s")
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	m := readManifests(t)
	deploy, svc := m.deploy, m.svc
	pod := deploy.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if !slices.Equal(ctr.Command, []string{"/rpcd"}) {
		t.Errorf("command %q, want the image's /rpcd", ctr.Command)
	}
	flags := parseFlags(t, "args", ctr.Args)
	checkArgsAccepted(t, "args", ctr.Args)
	port, metrics := listenPort(t, "args", flags), metricsPort(t, "args", flags)
	ports := map[string]int{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := map[string]int{"rpc": port, "metrics": metrics}; !maps.Equal(ports, want) {
		t.Fatalf("container ports %v, want the -listen and -metrics-listen ports %v", ports, want)
	}
	checkReadiness(t, ctr.ReadinessProbe, "metrics", metrics)
	checkLiveness(t, ctr.LivenessProbe, "rpc", port)
	checkScrapeAnnotations(t, deploy.Spec.Template.Metadata.Annotations, metrics)
	preStop := time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if preStop <= 0 {
		t.Error("no preStop sleep: the pod would drain while still in the Service's endpoints")
	}
	if drain := shutdownTimeout(t, flags); grace <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v is not above preStop %v + -shutdown-timeout %v", grace, preStop, drain)
	}
	if sc := pod.SecurityContext; !sc.RunAsNonRoot || sc.RunAsUser != 65534 {
		t.Errorf("pod securityContext %+v, want runAsNonRoot and runAsUser 65534", sc)
	}
	checkService(t, svc, deploy.Spec.Template.Metadata.Labels, ports)
	checkServiceMonitor(t, m.monitor, svc, m.services, ports["metrics"])
}

// checkReadiness wants an HTTP probe of the master's /readyz on the metrics
// port.
func checkReadiness(t *testing.T, p *probe, portName string, port int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Error("readinessProbe must be an httpGet of /readyz")
		return
	}
	if p.HTTPGet.Path != "/readyz" {
		t.Errorf("readinessProbe path %q, want /readyz", p.HTTPGet.Path)
	}
	if target := p.HTTPGet.Port.Value; target != portName && target != strconv.Itoa(port) {
		t.Errorf("readinessProbe port %s, want %s or %d", target, portName, port)
	}
}

// checkLiveness wants a TCP probe of the server's port: a ping, as
// readiness sends, fails on an overloaded pod too, which a restart only
// makes worse.
func checkLiveness(t *testing.T, p *probe, portName string, port int) {
	t.Helper()
	if p == nil || p.Exec != nil || p.TCPSocket == nil {
		t.Error("livenessProbe must be a tcpSocket probe, not a ping that fails under load")
		return
	}
	if target := p.TCPSocket.Port.Value; target != portName && target != strconv.Itoa(port) {
		t.Errorf("livenessProbe port %s, want %s or %d", target, portName, port)
	}
}

// checkScrapeAnnotations wants the pod template to ask for a scrape of
// /metrics on the metrics port.
func checkScrapeAnnotations(t *testing.T, annotations map[string]string, port int) {
	t.Helper()
	want := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(port),
		"prometheus.io/path":   "/metrics",
	}
	for k, v := range want {
		if annotations[k] != v {
			t.Errorf("pod annotation %s=%q, want %q", k, annotations[k], v)
		}
	}
}

// checkService wants the Service to select the pods and to have one port
// per container port, named as it and targeting it, rpc first.
func checkService(t *testing.T, svc *k8sObject, labels map[string]string, ports map[string]int) {
	t.Helper()
	var selector map[string]string
	if err := svc.Spec.Selector.Decode(&selector); err != nil || len(selector) == 0 {
		t.Fatalf("Service selector: %v", err)
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("Service selects %s=%s, the pods have %q", k, v, labels[k])
		}
	}
	if len(svc.Spec.Ports) != len(ports) || svc.Spec.Ports[0].Name != "rpc" {
		t.Fatalf("Service ports %+v, want %v with rpc first", svc.Spec.Ports, ports)
	}
	for _, p := range svc.Spec.Ports {
		port, ok := ports[p.Name]
		if !ok {
			t.Errorf("Service port %s names no container port", p.Name)
			continue
		}
		if target := p.TargetPort.Value; target != p.Name && target != strconv.Itoa(port) {
			t.Errorf("Service port %s targets %s, want %s or %d", p.Name, target, p.Name, port)
		}
	}
}

// checkServiceMonitor wants the ServiceMonitor to scrape /metrics through
// the Service's metrics port, and through no other Service's, so that each
// pod is scraped once.
func checkServiceMonitor(t *testing.T, monitor, svc *k8sObject, services []k8sObject, port int) {
	t.Helper()
	var selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := monitor.Spec.Selector.Decode(&selector); err != nil || len(selector.MatchLabels) == 0 {
		t.Fatalf("ServiceMonitor selector: want matchLabels (%v)", err)
	}
	if len(monitor.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %+v, want one", monitor.Spec.Endpoints)
	}
	ep := monitor.Spec.Endpoints[0]
	if ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor path %q, want /metrics", ep.Path)
	}
	var scraped []string
	for _, s := range services {
		selected := true
		for k, v := range selector.MatchLabels {
			selected = selected && s.Metadata.Labels[k] == v
		}
		for _, p := range s.Spec.Ports {
			if selected && p.Name == ep.Port {
				scraped = append(scraped, s.Metadata.Name)
			}
		}
	}
	if !slices.Equal(scraped, []string{svc.Metadata.Name}) {
		t.Errorf("ServiceMonitor scrapes port %q of Services %q, want only %s's", ep.Port, scraped, svc.Metadata.Name)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == ep.Port && p.TargetPort.Value != "metrics" && p.TargetPort.Value != strconv.Itoa(port) {
			t.Errorf("ServiceMonitor scrapes Service port %s, which targets %s, not the metrics port %d", p.Name, p.TargetPort.Value, port)
		}
	}
}

// composeService is the part of a Compose service the tests read.
type composeService struct {
	Image           string
	Command         []string
	Ports           []string
	StopGracePeriod string `yaml:"stop_grace_period"`
}

func TestComposeFiles(t *testing.T) {
	tests := []struct {
		file       string
		pending    string // a flag another change is adding; skip until rpcd has it
		wantScaled bool
	}{
		{file: "compose/docker-compose.yml", wantScaled: true},
		{file: "compose/rpcd-redis.yml", pending: "redis"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			var file struct{ Services map[string]composeService }
			var raw struct{ Services map[string]map[string]any }
			if err := yaml.Unmarshal(b, &file); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			svc, ok := file.Services["rpcd"]
			if !ok {
				t.Fatal("no rpcd service")
			}
			if tt.pending != "" && !knownFlags(t)[tt.pending] {
				t.Skipf("rpcd has no -%s flag yet", tt.pending)
			}
			checkComposeService(t, svc, imageFlags(t))
			if scale, _ := raw.Services["rpcd"]["scale"].(int); tt.wantScaled && scale < 2 {
				t.Errorf("rpcd has scale %d, want several replicas", scale)
			}
			composeConfig(t, tt.file)
		})
	}
}

// checkComposeService wants the rpcd image's flags valid, its RPC and
// metrics ports, as the image's entrypoint and the command set them, both
// published on 127.0.0.1 and nothing else published, and a grace period
// above the drain.
func checkComposeService(t *testing.T, svc composeService, image map[string]string) {
	t.Helper()
	if !strings.Contains(svc.Image, "rpcd") {
		t.Errorf("image %q is not rpcd", svc.Image)
	}
	flags := parseFlags(t, "command", svc.Command)
	checkArgsAccepted(t, "command", svc.Command)
	served := maps.Clone(image)
	maps.Copy(served, flags) // a later flag wins
	want := []string{
		":" + strconv.Itoa(listenPort(t, "image and command", served)),
		":" + strconv.Itoa(metricsPort(t, "image and command", served)),
	}
	var published []string
	for _, p := range svc.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %q: publish on 127.0.0.1 only", p)
		}
		published = append(published, p[strings.LastIndex(p, ":"):])
	}
	if !slices.Equal(published, want) {
		t.Errorf("ports %q publish container ports %q, want the -listen and -metrics-listen ports %q", svc.Ports, published, want)
	}
	grace, err := time.ParseDuration(svc.StopGracePeriod)
	if err != nil || grace <= shutdownTimeout(t, flags) {
		t.Errorf("stop_grace_period %q is not above -shutdown-timeout", svc.StopGracePeriod)
	}
}

// composeConfig validates file with the Compose tool, when there is one.
func composeConfig(t *testing.T, file string) {
	t.Helper()
	tool, ok := composeTool()
	if !ok {
		t.Log("no docker-compose or docker compose: skipped `config` validation")
		return
	}
	if _, err := tryRun(nil, tool[0], append(tool[1:], "-f", file, "config", "-q")...); err != nil {
		t.Error(err)
	}
}

// composeTool returns the Compose command: docker-compose or docker compose.
func composeTool() ([]string, bool) {
	if path, err := exec.LookPath("docker-compose"); err == nil {
		return []string{path}, true
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, true
	}
	return nil, false
}

// unitFile parses a systemd unit into section.key -> values.
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			keys[section+"."+k] = append(keys[section+"."+k], v)
		}
	}
	return keys
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/rpcd.service"
	unit := unitFile(t, path)
	want := map[string]string{
		"Service.Type":         "notify",
		"Service.NotifyAccess": "main",
		"Service.ExecReload":   "/bin/kill -HUP $MAINPID",
		"Service.KillMode":     "mixed",
		"Service.KillSignal":   "SIGTERM",
		// rpcd exits 2 on bad flags or configuration, which no restart fixes.
		"Service.RestartPreventExitStatus": "2",
		"Install.WantedBy":                 "multi-user.target",
	}
	for key, v := range want {
		if got := unit[key]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", key, got, v)
		}
	}
	start := strings.Fields(strings.Join(unit["Service.ExecStart"], " "))
	if len(start) < 2 || !strings.HasSuffix(start[0], "/rpcd") {
		t.Fatalf("ExecStart %q does not run rpcd", start)
	}
	flags := parseFlags(t, "ExecStart", start[1:])
	checkArgsAccepted(t, "ExecStart", start[1:])
	// The unit opens no firewall: the metrics stay on the loopback interface.
	if host, _, err := net.SplitHostPort(flags["metrics-listen"]); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("ExecStart -metrics-listen=%q, want a loopback host:port", flags["metrics-listen"])
	}
	stop, err := strconv.Atoi(strings.Join(unit["Service.TimeoutStopSec"], ""))
	if drain := shutdownTimeout(t, flags); err != nil || time.Duration(stop)*time.Second <= drain {
		t.Errorf("TimeoutStopSec %q is not above -shutdown-timeout %v", unit["Service.TimeoutStopSec"], drain)
	}
	systemdVerify(t, path, start[0])
}

// systemdVerify runs systemd-analyze verify on a copy of the unit whose
// ExecStart runs the test's binary, when systemd-analyze is installed.
func systemdVerify(t *testing.T, path, installed string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze: skipped verify")
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(copied, bytes.ReplaceAll(b, []byte(installed), []byte(rpcdBinary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copied).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
