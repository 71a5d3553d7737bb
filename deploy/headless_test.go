package deploy

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The headless Service selects the same pods and port as the Service, with
// no cluster IP, so that its name resolves to every ready pod (dns:///).
func TestHeadlessService(t *testing.T) {
	read := func(path string) (svc struct {
		Kind string
		Spec struct {
			ClusterIP string `yaml:"clusterIP"`
			Selector  map[string]string
			Ports     []struct {
				Name string
				Port int
			}
		}
	}) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &svc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return svc
	}
	headless, plain := read("k8s/headless-service.yaml"), read("k8s/service.yaml")
	if headless.Kind != "Service" || headless.Spec.ClusterIP != "None" {
		t.Fatalf("kind %s, clusterIP %q; want a Service with clusterIP None", headless.Kind, headless.Spec.ClusterIP)
	}
	if len(headless.Spec.Selector) == 0 || len(headless.Spec.Ports) != 1 {
		t.Fatalf("selector %v, ports %v; want a selector and one port", headless.Spec.Selector, headless.Spec.Ports)
	}
	for k, v := range plain.Spec.Selector {
		if headless.Spec.Selector[k] != v {
			t.Errorf("headless selects %v, the Service %v", headless.Spec.Selector, plain.Spec.Selector)
		}
	}
	if headless.Spec.Ports[0] != plain.Spec.Ports[0] {
		t.Errorf("headless port %+v, the Service's %+v", headless.Spec.Ports[0], plain.Spec.Ports[0])
	}
}
