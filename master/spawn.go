package master

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// slot is one worker position: a listening socket and the worker serving it.
type slot struct {
	index     int
	sock      *os.File  // the master's copy, open until Run returns
	worker    *worker   // nil while no worker runs
	restartAt time.Time // when to start the next worker; zero if none is due
	failures  int       // consecutive failures
	lastErr   error     // why the last worker failed
	everReady bool      // some worker of this slot has reported ready
}

// worker is one running worker process.
type worker struct {
	seq       uint64 // tells this worker's readiness event from a stale one
	pid       int
	proc      *os.Process
	readyPipe *os.File // read end of the readiness pipe
	started   time.Time
	ready     bool
	killed    bool // sent SIGKILL for not becoming ready in time
}

// readyEvent is what a worker's readiness pipe said: one byte, or EOF.
type readyEvent struct {
	slot  int
	seq   uint64
	ready bool
}

func newSlots(socks []*os.File, now time.Time) []*slot {
	slots := make([]*slot, len(socks))
	for i, sock := range socks {
		slots[i] = &slot{index: i, sock: sock, restartAt: now}
	}
	return slots
}

func (s *slot) info() WorkerInfo {
	info := WorkerInfo{Slot: s.index, Failures: s.failures}
	if w := s.worker; w != nil {
		info.Pid, info.Ready, info.Started = w.pid, w.ready, w.started
	}
	return info
}

// spawnWorker starts a worker in slot s, or records why it could not.
func (m *Master) spawnWorker(s *slot, now time.Time) {
	m.state.nextSeq++
	w, err := m.startProcess(s, m.state.nextSeq)
	if err != nil {
		m.log.Warn("spawn worker failed", zap.Int("slot", s.index), zap.Error(err))
		m.recordFailure(s, err, now)
		return
	}
	s.worker = w
	s.restartAt = time.Time{}
	m.log.Info("worker started", zap.Int("slot", s.index), zap.Int("pid", w.pid))
	go m.watchReady(s.index, w.seq, w.readyPipe)
}

// startProcess re-execs the worker binary with the slot's socket on ListenFD
// and a fresh readiness pipe on ReadyFD.
func (m *Master) startProcess(s *slot, seq uint64) (*worker, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", s.index, err)
	}
	defer w.Close() // the child has its own copy once started
	cmd := &exec.Cmd{
		Path:       m.cfg.Path,
		Args:       append([]string{m.cfg.Path}, m.cfg.Args...),
		Env:        append(m.cfg.Env[:len(m.cfg.Env):len(m.cfg.Env)], WorkerSlotEnv+"="+strconv.Itoa(s.index)),
		Stdout:     m.cfg.Stdout,
		Stderr:     m.cfg.Stderr,
		ExtraFiles: workerFiles(s.sock, w),
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", s.index, err)
	}
	return &worker{
		seq:       seq,
		pid:       cmd.Process.Pid,
		proc:      cmd.Process,
		readyPipe: r,
		started:   time.Now(),
	}, nil
}

// watchReady waits for a worker's readiness byte or EOF and reports it to
// the loop. It ends when the loop closes the pipe or Run returns.
func (m *Master) watchReady(slot int, seq uint64, pipe *os.File) {
	var b [1]byte
	n, _ := pipe.Read(b[:])
	select {
	case m.readyEvents <- readyEvent{slot: slot, seq: seq, ready: n == 1}:
	case <-m.done:
	}
}

// release frees what the master holds for an exited worker.
func (w *worker) release() {
	w.readyPipe.Close() // unblocks watchReady if a grandchild kept ReadyFD
	w.proc.Release()
}
