//go:build linux

package cmd

import (
	"fmt"
	"net"
	"os"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/rpcd/rpcd/master"
)

// notifySocketEnv names the datagram socket on which a service manager
// (systemd with Type=notify) waits for state changes; a leading '@' names an
// abstract socket.
const notifySocketEnv = "NOTIFY_SOCKET"

// serviceNotifier tells the service manager when the master is ready, when
// it reloads and when it stops, through the master's hooks. A nil
// *serviceNotifier does nothing.
type serviceNotifier struct {
	addr *net.UnixAddr
	log  *zap.Logger
}

// newServiceNotifier returns a notifier for $NOTIFY_SOCKET, or nil when it is
// unset. The variable stays in the master's environment, so that the image
// an upgrade executes speaks for the service too; workers never get it
// (workerEnv), since only the master speaks for the service.
func newServiceNotifier(log *zap.Logger) *serviceNotifier {
	name := os.Getenv(notifySocketEnv)
	if name == "" {
		return nil
	}
	return &serviceNotifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}, log: log}
}

// hooks are the master's hooks that notify the service manager; none
// without one.
func (n *serviceNotifier) hooks() master.Hooks {
	if n == nil {
		return master.Hooks{}
	}
	return master.Hooks{OnReady: n.ready, OnStopping: n.stopping,
		OnReloading: n.reloading, OnReloaded: n.reloaded}
}

// ready reports READY=1 with the master's pid (master.Hooks.OnReady).
func (n *serviceNotifier) ready() {
	n.send(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
}

// stopping reports STOPPING=1 (master.Hooks.OnStopping).
func (n *serviceNotifier) stopping() { n.send("STOPPING=1") }

// reloading reports RELOADING=1 with the time on the monotonic clock, which
// Type=notify-reload requires (master.Hooks.OnReloading).
func (n *serviceNotifier) reloading() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		n.log.Warn("read monotonic clock", zap.Error(os.NewSyscallError("clock_gettime", err)))
	}
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// reloaded reports READY=1 once a reload has ended, whether the new
// generation serves or the running one carries on: either way the service
// runs (master.Hooks.OnReloaded). The log says which.
func (n *serviceNotifier) reloaded(error) { n.send("READY=1") }

// send writes one notification datagram. A service manager that cannot be
// told is no reason to stop serving, so failures are logged.
func (n *serviceNotifier) send(state string) {
	if n == nil {
		return
	}
	if err := notify(n.addr, state); err != nil {
		n.log.Warn("notify service manager", zap.String("socket", n.addr.Name), zap.Error(err))
	}
}

// notify sends state to the datagram socket at addr.
func notify(addr *net.UnixAddr, state string) error {
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("send %q: %w", state, err)
	}
	return nil
}
