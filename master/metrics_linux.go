package master

import (
	"fmt"
	"strconv"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/metrics"
)

// The shared counters' part of the descriptor contract.
const (
	// MetricsFD is the worker's copy of the metrics region (package
	// metrics), passed only when Config.Metrics is set.
	MetricsFD = 5
	// MetricsBlockEnv names the variable that tells a worker which block
	// of the region is its own.
	MetricsBlockEnv = "RPCD_METRICS_BLOCK"
)

// Sizes of a region the master creates: slot totals, and blocks enough for
// two generations of a large server plus draining stragglers. A slot past
// metricsSlots, or a worker finding no free block, runs uncounted.
const (
	metricsSlots  = 256
	metricsBlocks = 512
)

// MetricsConfig turns on the shared counters.
type MetricsConfig struct {
	// Methods are the method table of a new region. A region handed over
	// by an upgrade keeps its own: the new image's other names count as
	// "other".
	Methods []string
}

// Metrics returns the shared counters, or nil when they are off or before
// Run has set them up. Safe to call from any goroutine.
func (m *Master) Metrics() *metrics.Region {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.metrics
}

// setUpMetrics creates the region, or maps the one the previous image
// handed over on fd (-1 if none).
func (m *Master) setUpMetrics(fd int) error {
	if m.cfg.Metrics == nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil
	}
	var r *metrics.Region
	var err error
	if fd >= 0 {
		// A region of another layout (an image of another version) is
		// left behind: the counts start over rather than the upgrade fail.
		if r, err = metrics.Open(fd); err != nil {
			m.log.Warn("handed-over metrics region unusable; counting from zero", zap.Error(err))
			unix.Close(fd)
		}
	}
	if r == nil {
		r, err = metrics.Create(m.cfg.Metrics.Methods, metricsSlots, metricsBlocks)
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.metrics = r
	m.mu.Unlock()
	return nil
}

// closeMetrics unmaps the region when Run returns.
func (m *Master) closeMetrics() {
	if r := m.Metrics(); r != nil {
		r.Close() //nolint:errcheck // nothing to do about it at exit
	}
}

// metricsFD is the region's descriptor for a handover, -1 without one.
func (m *Master) metricsFD() int {
	if m.metrics == nil {
		return -1
	}
	return m.metrics.FD()
}

// withBlock reserves a free block for a worker of slot about to start: its
// block and descriptor (-1 for none) and env with MetricsBlockEnv. A worker
// that gets no block runs uncounted.
func (m *Master) withBlock(slot int, env []string) (block, fd int, _ []string) {
	if m.metrics == nil {
		return -1, -1, env
	}
	b, ok := m.metrics.FreeBlock()
	if !ok {
		m.log.Warn("no free metrics block; the worker runs uncounted", zap.Int("slot", slot))
		return -1, -1, env
	}
	if !m.metrics.Claim(b, slot, 0) {
		m.log.Warn("slot beyond the metrics region; the worker runs uncounted", zap.Int("slot", slot))
		return -1, -1, env
	}
	return b, m.metrics.FD(), append(env[:len(env):len(env)], MetricsBlockEnv+"="+strconv.Itoa(b))
}

// claimBlock records that the started worker pid of slot holds the block
// withBlock reserved.
func (m *Master) claimBlock(block, slot, pid int) {
	if block >= 0 {
		m.metrics.Claim(block, slot, pid)
	}
}

// releaseBlock frees the block withBlock reserved for a worker that did
// not start.
func (m *Master) releaseBlock(block int) {
	if block >= 0 {
		m.metrics.Release(block)
	}
}

// countStart counts a worker started in role r.
func (m *Master) countStart(slot int, r role) {
	if m.metrics != nil {
		m.metrics.Count(slot, metrics.Starts([...]int{serving: 0, replacement: 1, incoming: 2, retiring: 0}[r]))
	}
}

// foldWorker folds the block of reaped worker w into its slot's totals and
// counts how it ended.
func (m *Master) foldWorker(w *worker, st unix.WaitStatus) {
	if m.metrics == nil {
		return
	}
	m.metrics.Fold(w.pid)
	killed := w.killed || m.state.killedAll && st.Signaled() && st.Signal() == unix.SIGKILL
	m.metrics.Count(w.slot.index, metrics.Exits(exitCause(st, killed)))
}

// foldUnknown folds the block of a reaped child this master did not start
// and counts how it ended. Such a child holding a block is a worker the
// previous image killed just before its exec (it hands over no worker it
// killed): a SIGKILL counts as killed.
func (m *Master) foldUnknown(pid int, st unix.WaitStatus) {
	if m.metrics == nil {
		return
	}
	if slot, ok := m.metrics.Fold(pid); ok {
		killed := st.Signaled() && st.Signal() == unix.SIGKILL
		m.metrics.Count(slot, metrics.Exits(exitCause(st, killed)))
	}
}

// exitCause is the index into metrics.ExitCauses of an exit with st.
func exitCause(st unix.WaitStatus, killed bool) int {
	switch {
	case killed:
		return 2
	case st.Exited() && st.ExitStatus() == 0:
		return 0
	}
	return 1 // crash
}

// countMissedBeat counts a worker killed for its silence.
func (m *Master) countMissedBeat(slot int) {
	if m.metrics != nil {
		m.metrics.Count(slot, metrics.MissedBeats)
	}
}

// countReloaded counts the outcome of a reload or of an upgraded image's
// rollout (why names which).
func (m *Master) countReloaded(why string, err error) {
	switch {
	case m.metrics == nil:
	case why == "upgrade":
		m.metrics.CountUpgrade(err == nil)
	default:
		m.metrics.CountReload(err == nil)
	}
}

// countUpgradeFailed counts an upgrade that failed before its exec.
func (m *Master) countUpgradeFailed() {
	if m.metrics != nil {
		m.metrics.CountUpgrade(false)
	}
}

// parseFD reads a handed-over descriptor number.
func parseFD(val string) (int, error) {
	fd, err := strconv.Atoi(val)
	if err != nil || fd <= 0 {
		return -1, fmt.Errorf("descriptor %q", val)
	}
	return fd, nil
}
