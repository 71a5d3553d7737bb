package deploy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
	"github.com/rpcd/rpcd/protocol"
)

// rpcdBinary is a static rpcd built once for the whole test run.
var rpcdBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rpcd-deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rpcdBinary = filepath.Join(dir, "rpcd")
	build := exec.Command("go", "build", "-trimpath", "-o", rpcdBinary, "../cmd/rpcd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rpcd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	removeImage()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runTimeout bounds every command a test runs.
const runTimeout = 3 * time.Minute

// run runs a command and returns its trimmed stdout, failing the test with
// its stderr when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := tryRun(nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryRun runs a command with extra environment env and returns its trimmed
// stdout, or an error carrying its stderr.
func tryRun(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// randomSuffix names the test's images, containers and projects.
func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// flagRE matches a flag's line in `rpcd -h`.
var flagRE = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)

var (
	flagsOnce sync.Once
	flagNames map[string]bool
	helpText  string
)

// knownFlags returns the names of the flags `rpcd -h` lists.
func knownFlags(t *testing.T) map[string]bool {
	t.Helper()
	flagsOnce.Do(func() {
		out, _ := exec.Command(rpcdBinary, "-h").CombinedOutput()
		helpText = string(out)
		flagNames = map[string]bool{}
		for _, m := range flagRE.FindAllStringSubmatch(helpText, -1) {
			flagNames[m[1]] = true
		}
	})
	if len(flagNames) < 5 {
		t.Fatalf("rpcd -h lists too few flags:\n%s", helpText)
	}
	return flagNames
}

// parseFlags splits "-name=value" arguments into a map, failing on anything
// rpcd -h does not list or on a flag given without =value.
func parseFlags(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	known := knownFlags(t)
	flags := map[string]string{}
	for _, arg := range args {
		name, value, ok := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || !known[name] {
			t.Errorf("%s: %q is not a flag of rpcd", where, arg)
			continue
		}
		if !ok && name != "check" && name != "version" {
			t.Errorf("%s: write %q as -%s=value", where, arg, name)
		}
		flags[name] = value
	}
	return flags
}

// checkArgsAccepted runs the binary with args as a health check against a
// port nothing serves: exit status 2 means rpcd rejected the flags.
func checkArgsAccepted(t *testing.T, where string, args []string) {
	t.Helper()
	full := append(append([]string{}, args...), "-check", "-listen=127.0.0.1:1", "-check-timeout=1s")
	var stderr strings.Builder
	cmd := exec.Command(rpcdBinary, full...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		t.Errorf("%s: rpcd rejects %q: %s", where, args, stderr.String())
	}
}

// pingOnce sends one ping on a new connection to addr and checks its pong.
func pingOnce(addr, params string) error {
	c, err := dialRPC(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.ping(params)
}

// waitServing pings addr until it answers, failing after timeout.
func waitServing(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	var err error
	if waitfor.Poll(timeout, func() bool { err = pingOnce(addr, `"ready?"`); return err == nil }) {
		return
	}
	t.Fatalf("%s not serving within %v: %v", addr, timeout, err)
}

// rpcConn speaks rpcd's protocol (little-endian lengths) on one connection.
type rpcConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRPC(addr string) (*rpcConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &rpcConn{Conn: c, r: bufio.NewReader(c)}, nil
}

func (c *rpcConn) send(method, params string) error {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(protocol.AppendRequest(nil, protocol.LittleEndian, method, []byte(params)))
	return err
}

// errCleanEOF is a connection closed by the server before any byte of the
// awaited answer: a request the server never read.
var errCleanEOF = errors.New("connection closed before the answer")

// recv reads one answer. A clean end of stream at a frame boundary is
// errCleanEOF; one inside a frame is io.ErrUnexpectedEOF.
func (c *rpcConn) recv() (out, result string, err error) {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	body, err := protocol.ReadFrame(c.r, protocol.LittleEndian, protocol.DefaultMaxFrame, nil)
	if err == io.EOF {
		return "", "", errCleanEOF
	}
	if err != nil {
		return "", "", fmt.Errorf("read answer: %w", err)
	}
	var resp protocol.Response
	if err := protocol.ParseResponse(body, &resp); err != nil {
		return "", "", err
	}
	return string(resp.Out), string(resp.Result), nil
}

// ping sends one ping and checks that its pong echoes params.
func (c *rpcConn) ping(params string) error {
	if err := c.send("ping", params); err != nil {
		return err
	}
	out, res, err := c.recv()
	if err != nil {
		return err
	}
	if out != "pong" || res != params {
		return fmt.Errorf("ping %s answered %s %s", params, out, res)
	}
	return nil
}
