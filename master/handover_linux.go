package master

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// handedOverFDs lists the descriptors the new image inherits.
func (m *Master) handedOverFDs() []int {
	var fds []int
	for _, s := range m.state.slots {
		fds = append(fds, s.sock)
	}
	for _, w := range m.state.workers {
		if w.role != retiring || !w.killed {
			fds = append(fds, rawFD(w.status))
		}
	}
	if f := m.cfg.PidFile; f != nil {
		fds = append(fds, rawFD(f))
	}
	if fd := m.metricsFD(); fd >= 0 {
		fds = append(fds, fd)
	}
	return fds
}

// handover describes the sockets and workers for the new image, and the
// signals it is to act on as if it had caught them:
//
//	v1 gen=G listen=L socks=FD,FD w=PID:SLOT:GEN:FD:READY:ROLE,... sigs=N,N pidfile=FD metrics=FD
//
// READY is 0 or 1, ROLE s (serving) or r (retiring); pidfile is there
// when Config.PidFile is set, metrics (the metrics region's descriptor)
// when metrics are on.
func (m *Master) handover(sigs []os.Signal) string {
	var socks, workers []string
	for _, s := range m.state.slots {
		socks = append(socks, strconv.Itoa(s.sock))
	}
	for _, w := range m.state.workers {
		if w.role == retiring && w.killed {
			continue
		}
		ready, r := 0, "s"
		if w.ready {
			ready = 1
		}
		if w.role == retiring {
			r = "r"
		}
		workers = append(workers, fmt.Sprintf("%d:%d:%d:%d:%d:%s", w.pid, w.slot.index, w.gen, rawFD(w.status), ready, r))
	}
	var nums []string
	for _, sig := range sigs {
		if n, ok := sig.(unix.Signal); ok {
			nums = append(nums, strconv.Itoa(int(n)))
		}
	}
	desc := fmt.Sprintf("v1 gen=%d listen=%s socks=%s w=%s sigs=%s", m.state.gen, m.state.settings.Listen,
		strings.Join(socks, ","), strings.Join(workers, ","), strings.Join(nums, ","))
	if f := m.cfg.PidFile; f != nil {
		desc += fmt.Sprintf(" pidfile=%d", rawFD(f))
	}
	if fd := m.metricsFD(); fd >= 0 {
		desc += fmt.Sprintf(" metrics=%d", fd)
	}
	return desc
}

// InheritedPidFile returns the locked pidfile that the image which
// executed this one handed over in inherited (the value of InheritEnv), or
// nil if there is none. Its lock is already held: the caller passes it on
// in Config.PidFile rather than locking the file anew, which would fail
// against its own lock.
func InheritedPidFile(inherited string) (*os.File, error) {
	if inherited == "" {
		return nil, nil
	}
	h, err := parseHandover(inherited)
	if err != nil || h.pidFD < 0 {
		return nil, err
	}
	if err := setCloexec([]int{h.pidFD}, true); err != nil {
		return nil, fmt.Errorf("adopt pidfile: %w", err)
	}
	return os.NewFile(uintptr(h.pidFD), "pidfile"), nil
}

// rawFD returns f's descriptor without f.Fd, which would make it blocking.
func rawFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(d uintptr) { fd = int(d) })
	}
	return fd
}

func setCloexec(fds []int, on bool) error {
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil {
			if on {
				flags |= unix.FD_CLOEXEC
			} else {
				flags &^= unix.FD_CLOEXEC
			}
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags)
		}
		if err != nil {
			return fmt.Errorf("set close-on-exec on %d: %w", fd, os.NewSyscallError("fcntl", err))
		}
	}
	return nil
}

// adopt takes over what the previous image handed over and requests the
// rollout of a new generation from this binary with this image's settings.
// It only records: the first step announces the master ready if the
// adopted workers are, then begins the rollout (OnReloading). If the new
// generation never becomes ready, the adopted workers keep serving.
func (m *Master) adopt(desc string, now time.Time) error {
	h, err := parseHandover(desc)
	if err != nil {
		return err
	}
	if err := setCloexec(h.fds(), true); err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	mfd := -1
	if h.metrics > 0 {
		mfd = h.metrics
	}
	if err := m.setUpMetrics(mfd); err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	m.state.gen = h.gen
	m.state.settings.Listen, m.state.settings.Workers = h.listen, len(h.socks)
	m.state.slots = newSlots(h.socks, time.Time{})
	m.setAddr(addrOf(h.socks[0]))
	for _, a := range h.workers {
		m.adoptWorker(a, now)
	}
	for _, s := range m.state.slots {
		if s.worker == nil { // its worker had exited: start one as usual
			s.restartAt = now
		}
	}
	m.log.Info("adopted running workers", masterPid(), zap.Int("generation", h.gen),
		zap.Int("slots", len(h.socks)), zap.Int("workers", len(h.workers)))
	m.replaySignals(h.sigs)
	m.request(actRollOut)
	return nil
}

// replaySignals queues the signals the previous image caught but left to
// this one. The loop has not read any yet, so only a full queue drops one.
func (m *Master) replaySignals(sigs []os.Signal) {
	for _, sig := range sigs {
		select {
		case m.signals <- sig:
		default:
			m.log.Warn("dropped a handed-over signal: too many pending", zap.Stringer("signal", sig))
		}
	}
}

func (m *Master) adoptWorker(a adopted, now time.Time) {
	var s *slot
	if a.slot >= 0 && a.slot < len(m.state.slots) && a.role == serving {
		s = m.state.slots[a.slot]
	} else {
		s = &slot{index: a.slot, sock: -1}
	}
	m.state.nextSeq++
	w := &worker{seq: m.state.nextSeq, pid: a.pid, proc: m.sys.findProcess(a.pid),
		status: os.NewFile(uintptr(a.statusFD), "status"), started: now, lastBeat: now,
		gen: a.gen, slot: s, role: a.role, ready: a.ready}
	if a.role == serving {
		s.worker, s.everReady = w, w.ready
		m.state.everReady = m.state.everReady || w.ready
	} else {
		w.drainBy = now.Add(m.state.settings.DrainTimeout)
	}
	m.state.workers[w.pid] = w
	go m.watchPipe(w.seq, w.status)
}

// handoverState is a parsed handover description.
type handoverState struct {
	gen     int
	listen  string
	socks   []int
	workers []adopted
	sigs    []os.Signal // caught by the previous image, not acted on
	pidFD   int         // the locked pidfile's descriptor; -1 if none
	metrics int         // the metrics region's descriptor; 0 (stdin) if none
}

type adopted struct {
	pid, slot, gen, statusFD int
	ready                    bool
	role                     role
}

// fds lists every descriptor handed over, none of which a worker this image
// starts may inherit.
func (h handoverState) fds() []int {
	fds := slices.Clone(h.socks)
	for _, w := range h.workers {
		fds = append(fds, w.statusFD)
	}
	if h.pidFD >= 0 {
		fds = append(fds, h.pidFD)
	}
	if h.metrics > 0 {
		fds = append(fds, h.metrics)
	}
	return fds
}

func parseHandover(desc string) (handoverState, error) {
	h := handoverState{pidFD: -1}
	fields := strings.Fields(desc)
	if len(fields) == 0 || fields[0] != "v1" {
		return h, fmt.Errorf("adopt: unknown handover %q", desc)
	}
	var err error
	for _, f := range fields[1:] {
		key, val, _ := strings.Cut(f, "=")
		switch key {
		case "gen":
			h.gen, err = strconv.Atoi(val)
		case "listen":
			h.listen = val
		case "socks":
			h.socks, err = parseInts(val, ",")
		case "w":
			h.workers, err = parseWorkers(val)
		case "sigs":
			h.sigs, err = parseSignals(val)
		case "pidfile":
			h.pidFD, err = strconv.Atoi(val)
		case "metrics":
			h.metrics, err = parseFD(val)
		}
		if err != nil {
			return h, fmt.Errorf("adopt: parse %s: %w", key, err)
		}
	}
	if len(h.socks) == 0 {
		return h, errors.New("adopt: no sockets handed over")
	}
	if _, err := net.ResolveTCPAddr("tcp", h.listen); err != nil {
		return h, fmt.Errorf("adopt: %w", err)
	}
	return h, nil
}

func parseWorkers(val string) ([]adopted, error) {
	var out []adopted
	for _, item := range strings.Split(val, ",") {
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) != 6 {
			return nil, fmt.Errorf("worker %q: want 6 fields", item)
		}
		n, err := parseInts(strings.Join(parts[:5], ":"), ":")
		if err != nil {
			return nil, err
		}
		a := adopted{pid: n[0], slot: n[1], gen: n[2], statusFD: n[3], ready: n[4] == 1, role: serving}
		if parts[5] == "r" {
			a.role = retiring
		}
		out = append(out, a)
	}
	return out, nil
}

// parseSignals reads the handed-over signal numbers: those the master
// handles, at most signalBuffer of them.
func parseSignals(val string) ([]os.Signal, error) {
	if val == "" {
		return nil, nil
	}
	nums, err := parseInts(val, ",")
	if err != nil {
		return nil, err
	}
	if len(nums) > signalBuffer {
		return nil, fmt.Errorf("%d signals, want at most %d", len(nums), signalBuffer)
	}
	sigs := make([]os.Signal, len(nums))
	for i, n := range nums {
		sigs[i] = unix.Signal(n)
		if _, ok := signalActions[sigs[i]]; !ok {
			return nil, fmt.Errorf("signal %d is not one the master handles", n)
		}
	}
	return sigs, nil
}

func parseInts(val, sep string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(val, sep) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
