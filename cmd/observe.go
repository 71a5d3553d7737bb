//go:build linux

package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rpcd/rpcd/master"
	"github.com/rpcd/rpcd/metrics"
	"github.com/rpcd/rpcd/metrics/exporter"
	"github.com/rpcd/rpcd/rpc"
)

// observeOptions are the settings for watching a running server: the
// master's metrics endpoint and the workers' access log.
type observeOptions struct {
	metricsListen string
	accessLog     string
	accessSample  int
}

func (o *observeOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "`host:port` where the master serves /metrics (Prometheus), /readyz and /livez; empty is off. Read at start")
	fs.StringVar(&o.accessLog, "access-log", "", "append a JSON line per answered request to this `file` (or stderr); reopened on SIGUSR1; empty is off. Params are never logged")
	fs.IntVar(&o.accessSample, "access-log-sample", 1, "log one in `N` successful requests, and every error")
}

func (o *observeOptions) check() error {
	if o.metricsListen != "" {
		if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
			return fmt.Errorf("-metrics-listen: %w", err)
		}
	}
	if o.accessSample < 1 {
		return fmt.Errorf("-access-log-sample=%d: want 1 or more", o.accessSample)
	}
	return nil
}

// workerAccessLog opens the worker's access log, nil when it is off.
func (o *observeOptions) workerAccessLog(slot int, stderr io.Writer, log *zap.Logger) (*accessLog, error) {
	if o.accessLog == "" {
		return nil, nil
	}
	return openAccessLog(o.accessLog, o.accessSample, stderr, log, zap.Int("slot", slot), zap.Int("pid", os.Getpid()))
}

// metricsConfig turns the master's shared counters on with -metrics-listen.
func (o *observeOptions) metricsConfig(reg *rpc.Registry) *master.MetricsConfig {
	if o.metricsListen == "" {
		return nil
	}
	return &master.MetricsConfig{Methods: reg.Methods()}
}

// readiness follows the master's hooks for /readyz.
type readiness struct {
	announced, stopping atomic.Bool
}

// wrap returns h with the hooks readiness needs called first.
func (r *readiness) wrap(h master.Hooks) master.Hooks {
	onReady, onStopping := h.OnReady, h.OnStopping
	h.OnReady = func() {
		r.announced.Store(true)
		if onReady != nil {
			onReady()
		}
	}
	h.OnStopping = func() {
		r.stopping.Store(true)
		if onStopping != nil {
			onStopping()
		}
	}
	return h
}

// ready reports whether every slot of m has a ready worker, the master has
// been ready, and it is not stopping.
func (r *readiness) ready(m *master.Master) bool {
	if !r.announced.Load() || r.stopping.Load() {
		return false
	}
	workers := m.Workers()
	for _, w := range workers {
		if !w.Ready {
			return false
		}
	}
	return len(workers) > 0
}

// metricsServer is the master's HTTP endpoint.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
	log *zap.Logger
}

// listenMetrics binds -metrics-listen; nil when it is off.
func listenMetrics(o *observeOptions, m *master.Master, r *readiness, log *zap.Logger) (*metricsServer, error) {
	if o.metricsListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", o.metricsListen)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	h := exporter.Handler(exporter.Source{
		Region:     m.Metrics,
		Generation: m.Generation,
		Ready:      func() bool { return r.ready(m) },
		Version:    version(),
		GoVersion:  runtime.Version(),
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving metrics", zap.Stringer("addr", ln.Addr()))
	return &metricsServer{srv: srv, ln: ln, log: log}, nil
}

// serve runs the endpoint until close; call it on its own goroutine.
func (s *metricsServer) serve() {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("metrics endpoint failed", zap.Error(err))
	}
}

func (s *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.srv.Shutdown(ctx) //nolint:errcheck // the master is exiting
}

// workerRecorder opens this worker's block of the metrics region its
// master passed, or returns nil when metrics are off.
func workerRecorder() (*metrics.Recorder, error) {
	env, ok := os.LookupEnv(master.MetricsBlockEnv)
	if !ok {
		return nil, nil
	}
	block, err := strconv.Atoi(env)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", master.MetricsBlockEnv, err)
	}
	region, err := metrics.Open(master.MetricsFD)
	if err != nil {
		return nil, err
	}
	return region.Recorder(block)
}
