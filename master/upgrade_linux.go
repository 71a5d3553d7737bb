package master

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// checkTimeout bounds the new binary's check run before an upgrade.
const checkTimeout = 10 * time.Second

// checkOutputMax is how much of the check run's output its error quotes.
const checkOutputMax = 4096

// binaryCheck is the run of the binary at Path with CheckArgs that an
// upgrade (SIGUSR2) waits for. It is a child like the workers: reaped by
// the loop, its output read by a pipe watcher, killed at its deadline.
// The loop supervises the workers meanwhile.
type binaryCheck struct {
	seq      uint64
	pid      int
	proc     process
	out      *os.File // read end of its stdout and stderr
	output   []byte
	eof      bool // out has ended
	exited   bool
	status   unix.WaitStatus
	deadline time.Time
	killed   bool // sent SIGKILL at its deadline
}

// startCheck (SIGUSR2) starts the check run of the new binary; endCheck
// acts on its result.
func (m *Master) startCheck(now time.Time) {
	c, err := m.spawnCheck(now)
	if err != nil {
		m.log.Error("upgrade failed; the running master carries on", zap.Error(err))
		m.countUpgradeFailed()
		return
	}
	m.state.check = c
	m.log.Info("checking the new binary", zap.String("path", m.cfg.Path), zap.Int("pid", c.pid))
	go m.watchPipe(c.seq, c.out)
}

func (m *Master) spawnCheck(now time.Time) (*binaryCheck, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("check new binary %s: %w", m.cfg.Path, err)
	}
	defer w.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("check new binary %s: %w", m.cfg.Path, err)
	}
	defer null.Close()
	argv := append([]string{m.cfg.Path}, m.cfg.CheckArgs...)
	pid, proc, err := m.sys.forkExec(m.cfg.Path, argv, m.state.settings.Env, []uintptr{null.Fd(), w.Fd(), w.Fd()})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("check new binary %s: %w", m.cfg.Path, err)
	}
	m.state.nextSeq++
	return &binaryCheck{seq: m.state.nextSeq, pid: pid, proc: proc, out: r, deadline: now.Add(checkTimeout)}, nil
}

// onOutput records what the check run wrote.
func (c *binaryCheck) onOutput(ev pipeEvent) {
	c.eof = c.eof || ev.eof
	c.output = append(c.output, ev.data[:min(len(ev.data), checkOutputMax-len(c.output))]...)
}

// onExit records how the check run ended.
func (c *binaryCheck) onExit(st unix.WaitStatus) { c.exited, c.status = true, st }

// killCheck kills a check run still running at its deadline.
func (m *Master) killCheck(now time.Time) {
	c := m.state.check
	if c == nil || c.exited || c.killed || now.Before(c.deadline) {
		return
	}
	c.killed = true
	if err := c.proc.Signal(unix.SIGKILL); err != nil {
		m.log.Warn("kill check run failed", zap.Int("pid", c.pid), zap.Error(err))
	}
}

// cancelCheck kills the check run when a stop begins; its exit is reaped
// as usual.
func (m *Master) cancelCheck() {
	if c := m.state.check; c != nil && !c.exited && !c.killed {
		m.log.Info("upgrade cancelled: stopping")
		c.killed = true
		c.proc.Signal(unix.SIGKILL) //nolint:errcheck // its exit is reaped either way
	}
}

// endCheck acts on a check run that has exited and whose output has ended
// (or that is past its deadline): it re-executes the master if the run
// succeeded, and reports why not otherwise.
func (m *Master) endCheck(now time.Time) {
	c := m.state.check
	if c == nil || !c.exited || (!c.eof && now.Before(c.deadline) && !m.state.stopping) {
		return
	}
	m.state.check = nil
	c.out.Close()
	c.proc.Release()
	if m.state.stopping {
		return
	}
	if err := c.result(m.cfg.Path); err != nil {
		m.log.Error("upgrade failed; the running master carries on", zap.Error(err))
		m.countUpgradeFailed()
		return
	}
	m.execNewImage()
}

// result says why the check run failed, or nil if it exited 0.
func (c *binaryCheck) result(path string) error {
	switch {
	case c.killed:
		return fmt.Errorf("check new binary %s: not done within %v", path, checkTimeout)
	case !c.status.Exited() || c.status.ExitStatus() != 0:
		return fmt.Errorf("check new binary %s: %w: %s", path, &ExitError{Pid: c.pid, Status: c.status},
			strings.TrimSpace(string(c.output)))
	}
	return nil
}

// execNewImage re-executes the master in place from the binary at Path,
// keeping its pid. The sockets and the workers' status pipes survive the
// exec; the new image adopts them and the running workers, then rolls out
// a new generation. The requests that waited for the check, and the
// signals not read yet, go to the new image; a stop among those signals
// cancels the upgrade. It returns only if the exec did not happen, having
// recorded those signals as the loop would have.
func (m *Master) execNewImage() {
	// From here, SIGHUP and SIGINT are ignored rather than caught: an
	// ignored signal stays ignored across the exec until the new image
	// catches it, where a default one would kill it. The others the Go
	// runtime resets, so the new image catches them as early as it can.
	signal.Ignore(ignoredAcrossExec...)
	defer signal.Notify(m.signals, ignoredAcrossExec...)
	late := m.drainSignals()
	// If the exec does not happen, the late signals are recorded here and
	// now: put back on the channel, a stop among them could be read after
	// a reload that waited for the check had already begun.
	defer func() {
		for _, sig := range late {
			m.onSignal(sig)
		}
	}()
	for _, sig := range late {
		if signalActions[sig] == actStop {
			m.log.Info("upgrade cancelled: stopping")
			return
		}
	}
	m.dropReplacements()
	fds := m.handedOverFDs()
	if err := setCloexec(fds, false); err != nil {
		m.log.Error("upgrade failed; the running master carries on", zap.Error(err))
		m.countUpgradeFailed()
		setCloexec(fds, true) //nolint:errcheck // best effort: the exec is off
		return
	}
	env := m.upgradeEnv(m.handover(m.handedOverSignals(late)))
	m.log.Info("upgrading: executing the new binary", zap.String("path", m.cfg.Path), masterPid(),
		zap.Int("generation", m.state.gen), zap.Int("workers", len(m.state.workers)))
	_ = m.log.Sync()
	err := m.sys.exec(m.cfg.Path, os.Args, env)
	setCloexec(fds, true) //nolint:errcheck // best effort: the exec failed
	m.log.Error("upgrade failed; the running master carries on", zap.Error(err))
	m.countUpgradeFailed()
}

// upgradeEnv is the new image's environment: the master's own, with
// InheritEnv set to handover and Config.UpgradeEnv's assignments.
func (m *Master) upgradeEnv(handover string) []string {
	env := withoutVar(os.Environ(), InheritEnv)
	var extra []string
	if m.cfg.UpgradeEnv != nil {
		extra = m.cfg.UpgradeEnv()
	}
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		env = withoutVar(env, name)
	}
	return append(append(env, extra...), InheritEnv+"="+handover)
}

// ignoredAcrossExec are the handled signals the Go runtime leaves ignored
// in a new image when they were ignored at its exec.
var ignoredAcrossExec = []os.Signal{unix.SIGHUP, unix.SIGINT}

// handedOverSignals returns the signals the new image is to act on: one
// for each request that waited for the check, then the late ones.
func (m *Master) handedOverSignals(late []os.Signal) []os.Signal {
	var sigs []os.Signal
	for _, act := range []action{actReload, actUpgrade} {
		if m.state.requested&act == 0 {
			continue
		}
		if sig, ok := signalFor(act); ok {
			sigs = append(sigs, sig)
		}
	}
	return append(sigs, late...)
}

// dropReplacements kills replacements that are still starting; they are
// not handed over, and the workers they would replace serve on.
func (m *Master) dropReplacements() {
	for _, s := range m.state.slots {
		if w := s.replacement; w != nil {
			s.replacement = nil
			w.role = retiring
			m.kill(w)
		}
	}
}
