package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
	_, port, err := net.SplitHostPort(flags["listen"])
	n, _ := strconv.Atoi(port)
	if err != nil || n == 0 {
		t.Fatalf("%s: no usable -listen in %v", where, flags)
	}
	return n
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
	if port := listenPort(t, "ENTRYPOINT", flags); plain["EXPOSE"] != strconv.Itoa(port) {
		t.Errorf("EXPOSE %s but -listen port %d", plain["EXPOSE"], port)
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
	Metadata struct{ Name string }
	Spec     struct {
		Selector yaml.Node
		Ports    []struct {
			Name       string
			Port       int
			TargetPort yaml.Node `yaml:"targetPort"`
		}
		Template struct {
			Metadata struct{ Labels map[string]string }
			Spec     podSpec
		}
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
	Exec           *struct{ Command []string }
	TCPSocket      *struct{ Port yaml.Node } `yaml:"tcpSocket"`
	TimeoutSeconds int                       `yaml:"timeoutSeconds"`
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

func TestKubernetesManifests(t *testing.T) {
	var deploy, svc *k8sObject
	for _, obj := range readK8s(t) {
		switch obj.Kind {
		case "Deployment":
			deploy = &obj
		case "Service":
			svc = &obj
		}
	}
	if deploy == nil || svc == nil {
		t.Fatal("want a Deployment and a Service in deploy/k8s")
	}
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
	port := listenPort(t, "args", flags)
	if len(ctr.Ports) != 1 || ctr.Ports[0].ContainerPort != port {
		t.Errorf("container ports %+v, want the -listen port %d", ctr.Ports, port)
	}
	checkProbe(t, "readinessProbe", ctr.ReadinessProbe, flags["listen"])
	checkLiveness(t, ctr.LivenessProbe, ctr.Ports[0].Name, port)
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
	checkService(t, svc, deploy.Spec.Template.Metadata.Labels, ctr.Ports[0].Name, port)
}

// checkProbe wants an exec probe running rpcd -check on the server's address
// that gives -check its time.
func checkProbe(t *testing.T, name string, p *probe, listen string) {
	t.Helper()
	if p == nil {
		t.Errorf("no %s", name)
		return
	}
	if p.Exec == nil {
		t.Errorf("%s is not an exec probe", name)
		return
	}
	cmd := p.Exec.Command
	if len(cmd) < 2 || cmd[0] != "/rpcd" || !slices.Contains(cmd, "-check") {
		t.Errorf("%s runs %q, want /rpcd -check", name, cmd)
		return
	}
	flags := parseFlags(t, name, cmd[1:])
	if flags["listen"] != listen {
		t.Errorf("%s checks -listen=%s, the server listens on %s", name, flags["listen"], listen)
	}
	timeout := 2 * time.Second
	if v, ok := flags["check-timeout"]; ok {
		timeout, _ = time.ParseDuration(v)
	}
	if time.Duration(p.TimeoutSeconds)*time.Second <= timeout {
		t.Errorf("%s timeoutSeconds %d leaves -check's %v no room", name, p.TimeoutSeconds, timeout)
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

// checkService wants the Service to select the pods and target their port.
func checkService(t *testing.T, svc *k8sObject, labels map[string]string, portName string, port int) {
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
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("want one Service port, got %d", len(svc.Spec.Ports))
	}
	if target := svc.Spec.Ports[0].TargetPort.Value; target != portName && target != strconv.Itoa(port) {
		t.Errorf("Service targetPort %s, want %s or %d", target, portName, port)
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
			checkComposeService(t, svc)
			if scale, _ := raw.Services["rpcd"]["scale"].(int); tt.wantScaled && scale < 2 {
				t.Errorf("rpcd has scale %d, want several replicas", scale)
			}
			composeConfig(t, tt.file)
		})
	}
}

// checkComposeService wants the rpcd image's flags valid, its port published
// on 127.0.0.1 and mapped to 8080, and a grace period above the drain.
func checkComposeService(t *testing.T, svc composeService) {
	t.Helper()
	if !strings.Contains(svc.Image, "rpcd") {
		t.Errorf("image %q is not rpcd", svc.Image)
	}
	flags := parseFlags(t, "command", svc.Command)
	checkArgsAccepted(t, "command", svc.Command)
	for _, p := range svc.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") || !strings.HasSuffix(p, ":8080") {
			t.Errorf("port %q: publish the image's 8080 on 127.0.0.1", p)
		}
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
