// Package python runs the Python client's pytest suite (tests/, through
// run-tests.sh) against a freshly built rpcd, so that `go test ./...` covers
// the Python client too.
package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// findPytest returns a Python interpreter that can import pytest, or "".
func findPytest() string {
	for _, py := range []string{os.Getenv("PYTHON"), "python3", "/usr/bin/python3"} {
		if py == "" {
			continue
		}
		if err := exec.Command(py, "-c", "import pytest").Run(); err == nil {
			return py
		}
	}
	return ""
}

func TestPythonClient(t *testing.T) {
	py := findPytest()
	if py == "" {
		if os.Getenv("RPCD_REQUIRE_PYTEST") != "" {
			t.Fatal("RPCD_REQUIRE_PYTEST is set but no python3 can import pytest")
		}
		t.Skip("pytest is not installed for python3: apt-get install python3-pytest")
	}
	bin := filepath.Join(t.TempDir(), "rpcd")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/rpcd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build rpcd: %v\n%s", err, out)
	}
	run := exec.Command("bash", "run-tests.sh", "-q")
	run.Env = append(os.Environ(), "RPCD_BINARY="+bin, "PYTHON="+py)
	out, err := run.CombinedOutput()
	t.Logf("run-tests.sh:\n%s", out)
	if err != nil {
		t.Fatalf("the Python client's tests failed: %v", err)
	}
}
