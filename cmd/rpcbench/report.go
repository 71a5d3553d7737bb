package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// report is the outcome of a run, printed as text or as one JSON object.
type report struct {
	Addr           string           `json:"addr"`
	Method         string           `json:"method"`
	Conns          int              `json:"conns"`
	Depth          int              `json:"depth"`
	ByteOrder      string           `json:"byteorder"`
	WarmupSeconds  float64          `json:"warmup_s"`
	Seconds        float64          `json:"duration_s"`
	Requests       int64            `json:"requests"`
	RPS            float64          `json:"rps"`
	LatencyMeanUS  float64          `json:"latency_mean_us"`
	LatencyP50US   float64          `json:"latency_p50_us"`
	LatencyP99US   float64          `json:"latency_p99_us"`
	LatencyP999US  float64          `json:"latency_p999_us"`
	LatencyMaxUS   float64          `json:"latency_max_us"`
	ErrorAnswers   int64            `json:"error_answers"`
	ErrorCodes     map[string]int64 `json:"error_codes,omitempty"`
	Mismatches     int64            `json:"mismatches"`
	FirstMismatch  string           `json:"first_mismatch,omitempty"`
	ConnErrors     int64            `json:"conn_errors"`
	ConnErrorKinds map[string]int64 `json:"conn_error_kinds,omitempty"`
	Reconnects     int64            `json:"reconnects"`
	Lost           int64            `json:"lost"`
	Server         *serverCPU       `json:"server,omitempty"`
	Backend        *serverCPU       `json:"backend,omitempty"` // -backend-pid's process tree
}

// serverCPU is a process tree's CPU time over the measured window.
type serverCPU struct {
	PID           int     `json:"pid"`
	Procs         int     `json:"procs"` // the process and its direct children at the end
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerRequest float64 `json:"cpu_us_per_req"`
}

// cpuUsage is the CPU a server process tree used between two samples.
type cpuUsage struct {
	pid   int
	procs int
	used  time.Duration
}

// perRequest is u spread over requests; nil for no usage.
func (u *cpuUsage) perRequest(requests int64) *serverCPU {
	if u == nil {
		return nil
	}
	s := &serverCPU{PID: u.pid, Procs: u.procs, CPUSeconds: u.used.Seconds()}
	if requests > 0 {
		s.CPUPerRequest = u.used.Seconds() * 1e6 / float64(requests)
	}
	return s
}

// cpuUsed returns the CPU used between before and after, or nil without a pid.
func cpuUsed(pid int, before, after cpuSample) *cpuUsage {
	if pid == 0 {
		return nil
	}
	var ticks uint64
	if after.ticks > before.ticks {
		ticks = after.ticks - before.ticks
	}
	return &cpuUsage{pid: pid, procs: after.procs, used: ticksToDuration(ticks)}
}

func buildReport(cfg config, st *stats, elapsed time.Duration, cpu, backend *cpuUsage) report {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	r := report{
		Addr:           cfg.addr,
		Method:         cfg.method,
		Conns:          cfg.conns,
		Depth:          cfg.depth,
		ByteOrder:      cfg.byteOrder.String(),
		WarmupSeconds:  cfg.warmup.Seconds(),
		Seconds:        elapsed.Seconds(),
		Requests:       st.requests,
		LatencyMeanUS:  st.latency.Mean() / 1e3,
		LatencyP50US:   us(st.latency.ValueAtPercentile(50)),
		LatencyP99US:   us(st.latency.ValueAtPercentile(99)),
		LatencyP999US:  us(st.latency.ValueAtPercentile(99.9)),
		LatencyMaxUS:   us(st.latency.Max()),
		ErrorAnswers:   st.errorAnswers,
		ErrorCodes:     st.errorCodes,
		Mismatches:     st.mismatches,
		FirstMismatch:  st.mismatchBody,
		ConnErrors:     sumCounts(st.connErrors),
		ConnErrorKinds: st.connErrors,
		Reconnects:     st.reconnects,
		Lost:           st.lost,
	}
	if elapsed > 0 {
		r.RPS = float64(st.requests) / elapsed.Seconds()
	}
	r.Server, r.Backend = cpu.perRequest(st.requests), backend.perRequest(st.requests)
	return r
}

// clean reports whether every answer was right and no connection failed.
func (r *report) clean() bool {
	return r.ErrorAnswers == 0 && r.Mismatches == 0 && r.ConnErrors == 0
}

// write prints the report as one JSON object or as text.
func (r *report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		if err := json.NewEncoder(w).Encode(r); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		return nil
	}
	if _, err := io.WriteString(w, r.text()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func (r *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s: %d conns, depth %d, %.2fs measured",
		r.Method, r.Addr, r.Conns, r.Depth, r.Seconds)
	if r.WarmupSeconds > 0 {
		fmt.Fprintf(&b, " after %gs warmup", r.WarmupSeconds)
	}
	fmt.Fprintf(&b, "\nrequests     %d  (%.0f req/s)\n", r.Requests, r.RPS)
	fmt.Fprintf(&b, "latency      p50 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
		formatUS(r.LatencyP50US), formatUS(r.LatencyP99US), formatUS(r.LatencyP999US),
		formatUS(r.LatencyMaxUS), formatUS(r.LatencyMeanUS))
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "server cpu   %.2f µs/req  (pid %d, %d processes, %.2fs cpu)\n",
			s.CPUPerRequest, s.PID, s.Procs, s.CPUSeconds)
	}
	if s := r.Backend; s != nil {
		fmt.Fprintf(&b, "backend cpu  %.2f µs/req  (pid %d, %d processes, %.2fs cpu)\n",
			s.CPUPerRequest, s.PID, s.Procs, s.CPUSeconds)
	}
	fmt.Fprintf(&b, "answers      %d errors%s, %d mismatches\n",
		r.ErrorAnswers, formatCounts(r.ErrorCodes), r.Mismatches)
	if r.FirstMismatch != "" {
		fmt.Fprintf(&b, "first mismatch %q\n", r.FirstMismatch)
	}
	fmt.Fprintf(&b, "connections  %d errors%s, %d reconnects, %d requests lost\n",
		r.ConnErrors, formatCounts(r.ConnErrorKinds), r.Reconnects, r.Lost)
	return b.String()
}

// formatUS prints microseconds in the unit that suits their size.
func formatUS(us float64) string {
	switch {
	case us < 1e3:
		return fmt.Sprintf("%.1fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// formatCounts prints " (a 1, b 2)" in key order, or nothing for no counts.
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
