package master

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// slot is one worker position: a listening socket and the worker serving it.
type slot struct {
	index       int
	sock        int       // the master's copy, open while the slot exists
	worker      *worker   // the serving worker; nil while none runs
	replacement *worker   // a replacement being started; nil if none
	restartAt   time.Time // when to start the next worker; zero if none is due
	failures    int       // consecutive failures
	lastErr     error     // why the last worker failed
	everReady   bool      // some worker of this slot has reported ready
}

// role is what a worker process is to the master.
type role uint8

const (
	serving     role = iota // its slot's worker (starting or ready)
	replacement             // its slot's replacement, not serving yet
	incoming                // a worker of the generation being rolled out
	retiring                // draining; SIGKILL at drainBy
)

// String names the role in the log ("as" of "worker started").
func (r role) String() string {
	return [...]string{"serving", "replacement", "incoming", "retiring"}[r]
}

// worker is one running worker process.
type worker struct {
	seq      uint64 // tells this worker's pipe events from a stale one
	pid      int
	proc     process
	status   *os.File // read end of the status pipe
	started  time.Time
	gen      int
	slot     *slot
	role     role
	ready    bool
	recycle  bool      // asked to be replaced, no replacement started yet
	killed   bool      // sent SIGKILL
	killAt   time.Time // timed out and sent SIGABRT: when it gets SIGKILL
	lastBeat time.Time // last status byte
	drainBy  time.Time // retiring: when it gets SIGKILL
}

// pipeEvent is what a child wrote on the pipe the master reads it by (a
// worker's status bytes, the upgrade check's output), or the pipe's end.
type pipeEvent struct {
	seq  uint64 // the child's
	data []byte
	eof  bool
	when time.Time
}

func newSlots(socks []int, now time.Time) []*slot {
	slots := make([]*slot, len(socks))
	for i, sock := range socks {
		slots[i] = &slot{index: i, sock: sock, restartAt: now}
	}
	return slots
}

func (s *slot) info() WorkerInfo {
	info := WorkerInfo{Slot: s.index, Failures: s.failures}
	if w := s.worker; w != nil {
		info.Pid, info.Ready, info.Started, info.Generation = w.pid, w.ready, w.started, w.gen
	}
	return info
}

// spawnWorker starts a worker of generation gen for slot s with g's Args
// and Env, in the given role. It returns nil, having logged why, if it
// could not; a serving worker's failure counts against its slot.
func (m *Master) spawnWorker(s *slot, gen int, g *Generation, r role, now time.Time) *worker {
	m.state.nextSeq++
	w, err := m.startProcess(s, g.Args, g.Env, m.state.nextSeq, now)
	if err != nil {
		m.log.Warn("spawn worker failed", zap.Int("slot", s.index), zap.Error(err))
		if r == serving {
			m.recordFailure(s, err, now)
		}
		return nil
	}
	w.gen, w.slot, w.role = gen, s, r
	m.state.workers[w.pid] = w
	m.countStart(s.index, r)
	m.log.Info("worker started", zap.Int("slot", s.index), zap.Int("pid", w.pid),
		zap.Int("generation", gen), zap.Stringer("as", r))
	go m.watchPipe(w.seq, w.status)
	return w
}

// startProcess re-execs the worker binary with the slot's socket on ListenFD
// and a fresh status pipe on StatusFD.
func (m *Master) startProcess(s *slot, args, env []string, seq uint64, now time.Time) (*worker, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: %w", s.index, err)
	}
	defer w.Close() // the child has its own copy once started
	null, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", s.index, err)
	}
	defer null.Close()
	block, mfd, env := m.withBlock(s.index, env)
	pid, proc, err := m.sys.forkExec(m.cfg.Path, append([]string{m.cfg.Path}, args...),
		append(env[:len(env):len(env)], WorkerSlotEnv+"="+strconv.Itoa(s.index)),
		workerFiles(null.Fd(), m.cfg.Stdout.Fd(), m.cfg.Stderr.Fd(), s.sock, w.Fd(), mfd))
	if err != nil {
		m.releaseBlock(block)
		r.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", s.index, err)
	}
	m.claimBlock(block, s.index, pid)
	return &worker{seq: seq, pid: pid, proc: proc, status: r, started: now, lastBeat: now}, nil
}

// watchPipe forwards what a child writes on pipe to the loop until the
// pipe ends. It ends when the loop closes the pipe or Run returns.
func (m *Master) watchPipe(seq uint64, pipe *os.File) {
	for {
		buf := make([]byte, 512)
		n, err := pipe.Read(buf)
		if n > 0 && !m.sendPipe(pipeEvent{seq: seq, data: buf[:n], when: time.Now()}) {
			return
		}
		if err != nil {
			m.sendPipe(pipeEvent{seq: seq, eof: true, when: time.Now()})
			return
		}
	}
}

func (m *Master) sendPipe(ev pipeEvent) bool {
	select {
	case m.pipeEvents <- ev:
		return true
	case <-m.done:
		return false
	}
}

// release frees what the master holds for an exited worker.
func (w *worker) release() {
	w.status.Close() // unblocks watchPipe if a grandchild kept StatusFD
	w.proc.Release()
}
